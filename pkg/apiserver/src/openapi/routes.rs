//! The operations the server offers, path by path, as upstream's API installer (and, for
//! custom resources, the CRD OpenAPI builder) registers them: one [`Route`] per path with
//! its [`Operation`]s, in a neutral form that [`render_v2`] and [`render_v3`] write out.
//!
//! What is listed follows what is served: a verb a resource does not serve has no
//! operation, and a path without operations is not listed (the router answers 404 there).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::registry::{Resource, Subresource};
use crate::schema::convert::Dialect;

/// `io.k8s.apimachinery.pkg.apis.meta.v1.*` names the operations refer to.
pub(crate) mod meta {
    /// The answer of deletes that return no object.
    pub const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
    /// The body of deletes.
    pub const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
    /// The body of patches.
    pub const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
    /// One event of a watch.
    pub const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
    /// `/api/v1/`, `/apis/<group>/<version>/`.
    pub const API_RESOURCE_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList";
    /// `/apis/<group>/`.
    pub const API_GROUP: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroup";
    /// `/apis/`.
    pub const API_GROUP_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroupList";
    /// `/api/`.
    pub const API_VERSIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIVersions";
    /// `/version/`.
    pub const VERSION_INFO: &str = "io.k8s.apimachinery.pkg.version.Info";
    /// The `/scale` view.
    pub const SCALE: &str = "io.k8s.api.autoscaling.v1.Scale";
}

/// Where a parameter is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum In {
    /// The query string.
    Query,
    /// A `{placeholder}` of the path.
    Path,
}

/// A query or path parameter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Param {
    /// Its name.
    pub name: &'static str,
    /// Where it is read from.
    pub location: In,
    /// JSON type (`string`, `boolean`, `integer`).
    pub ty: &'static str,
    /// What it does.
    pub description: String,
    /// Path parameters are required.
    pub required: bool,
    /// Upstream's name for it under the v2 document's `parameters`, where upstream
    /// shares it between operations by reference.
    pub shared: Option<&'static str>,
}

/// The body an operation reads.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Body {
    /// An object of the named definition (create, replace).
    Object(String),
    /// A patch document.
    Patch,
    /// Optional `DeleteOptions`.
    DeleteOptions,
}

/// One operation: a method on a path.
#[derive(Debug, Clone)]
pub(crate) struct Operation {
    /// `get`, `post`, `put`, `patch` or `delete`.
    pub method: &'static str,
    /// `x-kubernetes-action`; `None` for discovery documents.
    pub action: Option<&'static str>,
    /// `operationId`.
    pub id: String,
    /// `description`.
    pub description: String,
    /// The one tag (`core_v1`, `apps_v1`, `apps`).
    pub tag: String,
    /// `x-kubernetes-group-version-kind` of what the operation works on.
    pub gvk: Option<(String, String, String)>,
    /// Query and path parameters.
    pub params: Vec<Param>,
    /// The request body, if any.
    pub body: Option<Body>,
    /// Media types of the body.
    pub consumes: Vec<&'static str>,
    /// Media types of the answer.
    pub produces: Vec<&'static str>,
    /// Status codes with the definition of their body (`None`: no body).
    pub responses: Vec<(u16, Option<String>)>,
}

/// A path and its operations.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    /// The path with `{namespace}` and `{name}` placeholders.
    pub path: String,
    /// Its operations.
    pub ops: Vec<Operation>,
}

const JSON: &str = "application/json";
const YAML: &str = "application/yaml";
const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";
const JSON_WATCH: &str = "application/json;stream=watch";
const PROTOBUF_WATCH: &str = "application/vnd.kubernetes.protobuf;stream=watch";
const JSON_PATCH: &str = "application/json-patch+json";
const MERGE_PATCH: &str = "application/merge-patch+json";
const STRATEGIC_PATCH: &str = "application/strategic-merge-patch+json";
const APPLY_PATCH: &str = "application/apply-patch+yaml";

/// A query parameter of upstream's options types, by name; `patch` picks the variant of
/// `fieldManager` patches document (required for apply).
fn query(name: &'static str, patch: bool) -> Param {
    let (ty, shared, description): (&str, Option<&'static str>, &str) = match name {
        "allowWatchBookmarks" => (
            "boolean",
            Some("allowWatchBookmarks-HC2hJt-J"),
            "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers that do not implement bookmarks may ignore this flag and bookmarks are sent at the server's discretion. Clients should not assume bookmarks are returned at any specific interval, nor may they assume the server will send any BOOKMARK event during a session. If this is not a watch, this field is ignored.",
        ),
        "continue" => (
            "string",
            Some("continue-QfD61s0i"),
            "The continue option should be set when retrieving more results from the server. Since this value is server defined, clients may only use the continue value from a previous query result with identical query parameters (except for the value of continue) and the server may reject a continue value it does not recognize. If the specified continue value is no longer valid whether due to expiration (generally five to fifteen minutes) or a configuration change on the server, the server will respond with a 410 ResourceExpired error together with a continue token. If the client needs a consistent list, it must restart their list without the continue field. Otherwise, the client may send another list request with the token received with the 410 error, the server will respond with a list starting from the next key, but from the latest snapshot, which is inconsistent from the previous list results - objects that are created, modified, or deleted after the first list request will be included in the response, as long as their keys are after the \"next key\".\n\nThis field is not supported when watch is true. Clients may start a watch from the last resourceVersion value returned by the server and not miss any modifications.",
        ),
        "dryRun" => (
            "string",
            None,
            "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed",
        ),
        "fieldManager" if patch => (
            "string",
            Some("fieldManager-7c6nTn1T"),
            "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint. This field is required for apply requests (application/apply-patch) but optional for non-apply patch types (JsonPatch, MergePatch, StrategicMergePatch).",
        ),
        "fieldManager" => (
            "string",
            Some("fieldManager-Qy4HdaTW"),
            "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.",
        ),
        "fieldSelector" => (
            "string",
            Some("fieldSelector-xIcQKXFG"),
            "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
        ),
        "fieldValidation" => (
            "string",
            None,
            "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.",
        ),
        "force" => (
            "boolean",
            Some("force-tOGGb0Yi"),
            "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.",
        ),
        "gracePeriodSeconds" => (
            "integer",
            Some("gracePeriodSeconds--K5HaBOS"),
            "The duration in seconds before the object should be deleted. Value must be non-negative integer. The value zero indicates delete immediately. If this value is nil, the default grace period for the specified type will be used. Defaults to a per object value if not specified. zero means delete immediately.",
        ),
        "labelSelector" => (
            "string",
            Some("labelSelector-5Zw57w4C"),
            "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
        ),
        "limit" => (
            "integer",
            Some("limit-1NfNmdNH"),
            "limit is a maximum number of responses to return for a list call. If more items exist, the server will set the `continue` field on the list metadata to a value that can be used with the same initial query to retrieve the next set of results. Setting a limit may return fewer than the requested amount of items (up to zero items) in the event all requested objects are filtered out and clients should only use the presence of the continue field to determine whether more results are available. Servers may choose not to support the limit argument and will return all of the available results. If limit is specified and the continue field is empty, clients may assume that no more results are available. This field is not supported if watch is true.\n\nThe server guarantees that the objects returned when using continue will be identical to issuing a single list call without a limit - that is, no objects created, modified, or deleted after the first request is issued will be included in any subsequent continued requests. This is sometimes referred to as a consistent snapshot, and ensures that a client that is using limit to receive smaller chunks of a very large result can ensure they see all possible objects. If objects are updated during a chunked list the version of the object that was present at the time the first list result was calculated is returned.",
        ),
        "orphanDependents" => (
            "boolean",
            Some("orphanDependents-uRB25kX5"),
            "Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7. Should the dependent objects be orphaned. If true/false, the \"orphan\" finalizer will be added to/removed from the object's finalizers list. Either this field or PropagationPolicy may be set, but not both.",
        ),
        "pretty" => (
            "string",
            Some("pretty-tJGM1-ng"),
            "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).",
        ),
        "propagationPolicy" => (
            "string",
            Some("propagationPolicy-6jk3prlO"),
            "Whether and how garbage collection will be performed. Either this field or OrphanDependents may be set, but not both. The default policy is decided by the existing finalizer set in the metadata.finalizers and the resource-specific default policy. Acceptable values are: 'Orphan' - orphan the dependents; 'Background' - allow the garbage collector to delete the dependents in the background; 'Foreground' - a cascading policy that deletes all dependents in the foreground.",
        ),
        "resourceVersion" => (
            "string",
            Some("resourceVersion-5WAnf1kx"),
            "resourceVersion sets a constraint on what resource versions a request may be served from. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset",
        ),
        "resourceVersionMatch" => (
            "string",
            Some("resourceVersionMatch-t8XhRHeC"),
            "resourceVersionMatch determines how resourceVersion is applied to list calls. It is highly recommended that resourceVersionMatch be set for list calls where resourceVersion is set See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset",
        ),
        "sendInitialEvents" => (
            "boolean",
            Some("sendInitialEvents-rLXlEK_k"),
            "`sendInitialEvents=true` may be set together with `watch=true`. In that case, the watch stream will begin with synthetic events to produce the current state of objects in the collection. Once all such events have been sent, a synthetic \"Bookmark\" event  will be sent. The bookmark will report the ResourceVersion (RV) corresponding to the set of objects, and be marked with `\"k8s.io/initial-events-end\": \"true\"` annotation. Afterwards, the watch stream will proceed as usual, sending watch events corresponding to changes (subsequent to the RV) to objects watched.\n\nWhen `sendInitialEvents` option is set, we require `resourceVersionMatch` option to also be set. The semantic of the watch request is as following: - `resourceVersionMatch` = NotOlderThan\n  is interpreted as \"data at least as new as the provided `resourceVersion`\"\n  and the bookmark event is send when the state is synced\n  to a `resourceVersion` at least as fresh as the one provided by the ListOptions.\n  If `resourceVersion` is unset, this is interpreted as \"consistent read\" and the\n  bookmark event is send when the state is synced at least to the moment\n  when request started being processed.\n- `resourceVersionMatch` set to any other value or unset\n  Invalid error is returned.\n\nDefaults to true if `resourceVersion=\"\"` or `resourceVersion=\"0\"` (for backward compatibility reasons) and to false otherwise.",
        ),
        "timeoutSeconds" => (
            "integer",
            Some("timeoutSeconds-yvYezaOC"),
            "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity.",
        ),
        "watch" => (
            "boolean",
            Some("watch-XNNPZGbK"),
            "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion.",
        ),
        _ => ("string", None, ""),
    };
    Param {
        name,
        location: In::Query,
        ty,
        description: description.to_string(),
        required: false,
        shared,
    }
}

fn namespace_param() -> Param {
    Param {
        name: "namespace",
        location: In::Path,
        ty: "string",
        description: "object name and auth scope, such as for teams and projects".into(),
        required: true,
        shared: Some("namespace-vgWSWtn3"),
    }
}

fn name_param(kind: &str) -> Param {
    Param {
        name: "name",
        location: In::Path,
        ty: "string",
        description: format!("name of the {kind}"),
        required: true,
        shared: None,
    }
}

/// Query parameters of each action (besides `pretty`, which every operation takes).
fn action_params(action: &str) -> Vec<Param> {
    let names: &[&'static str] = match action {
        "list" | "watch" | "watchlist" => &[
            "allowWatchBookmarks",
            "continue",
            "fieldSelector",
            "labelSelector",
            "limit",
            "resourceVersion",
            "resourceVersionMatch",
            "sendInitialEvents",
            "timeoutSeconds",
            "watch",
        ],
        "post" | "put" => &["dryRun", "fieldManager", "fieldValidation"],
        "patch" => &["dryRun", "fieldManager", "fieldValidation", "force"],
        "delete" => &[
            "dryRun",
            "gracePeriodSeconds",
            "orphanDependents",
            "propagationPolicy",
        ],
        "deletecollection" => &[
            "continue",
            "dryRun",
            "fieldSelector",
            "gracePeriodSeconds",
            "labelSelector",
            "limit",
            "orphanDependents",
            "propagationPolicy",
            "resourceVersion",
            "resourceVersionMatch",
            "sendInitialEvents",
            "timeoutSeconds",
        ],
        _ => &[],
    };
    let mut params: Vec<Param> = names.iter().map(|n| query(n, action == "patch")).collect();
    params.push(query("pretty", false));
    params
}

/// Upstream's `ToValidOperationID`: drops characters that cannot be in an identifier and
/// capitalizes the letter after each (and the first, when asked).
pub(crate) fn operation_id_part(s: &str, capitalize_first: bool) -> String {
    let mut out = String::with_capacity(s.len());
    let mut capitalize = capitalize_first;
    for (i, c) in s.chars().enumerate() {
        if c.is_alphabetic() || c == '_' || (i != 0 && c.is_ascii_digit()) {
            if capitalize {
                out.extend(c.to_uppercase());
                capitalize = false;
            } else {
                out.push(c);
            }
        } else {
            capitalize = true;
        }
    }
    out
}

/// A group as operation ids and tags name it: `core`, `apps`, `rbac.authorization`
/// (`.k8s.io` dropped).
fn group_stem(group: &str) -> &str {
    if group.is_empty() {
        "core"
    } else {
        group.strip_suffix(".k8s.io").unwrap_or(group)
    }
}

/// The operation id prefix of a group version (`CoreV1`, `RbacAuthorizationV1`).
pub(crate) fn id_prefix(group: &str, version: &str) -> String {
    operation_id_part(group_stem(group), true) + &operation_id_part(version, true)
}

/// The tag of a group version (`core_v1`, `rbacAuthorization_v1`).
pub(crate) fn tag(group: &str, version: &str) -> String {
    format!(
        "{}_{}",
        operation_id_part(group_stem(group), false),
        operation_id_part(version, false)
    )
}

/// The tag of a group's own document (`apps`, `rbacAuthorization`).
pub(crate) fn group_tag(group: &str) -> String {
    operation_id_part(group_stem(group), false)
}

/// Upstream's article before a kind: none for plurals (`Endpoints`), else `a` or `an`.
fn article(kind: &str) -> &'static str {
    if kind.ends_with('s') && !kind.ends_with("ss") {
        return " ";
    }
    match kind.chars().next().map(|c| c.to_ascii_lowercase()) {
        Some('a' | 'e' | 'i' | 'o' | 'u') => " an ",
        _ => " a ",
    }
}

/// Whether upstream's documents give the deleted object as a delete's answer: the kinds
/// whose storage returns it, except namespaces, whose REST wrapper does not say so (its
/// deletes answer with the namespace all the same).
fn documents_deleted_object(i: &crate::registry::ResourceInfo) -> bool {
    i.returns_deleted_object && !(i.group.is_empty() && i.plural == "namespaces")
}

/// `/api/v1` or `/apis/<group>/<version>`.
pub(crate) fn group_version_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

/// The routes of one served resource.
pub(crate) fn resource_routes(r: &Resource) -> Vec<Route> {
    let i = &r.info;
    let base = group_version_path(&i.group, &i.version);
    let kind = i.kind.as_str();
    let prefix = id_prefix(&i.group, &i.version);
    let ns = if i.namespaced { "Namespaced" } else { "" };
    let def = i.definition.clone();
    let list_def = format!("{def}List");
    let gvk = (i.group.clone(), i.version.clone(), kind.to_string());
    let custom = i.custom;
    let object_types: Vec<&'static str> = if custom {
        vec![JSON, YAML]
    } else {
        vec![JSON, YAML, PROTOBUF]
    };
    let list_types: Vec<&'static str> = if custom {
        vec![JSON, YAML]
    } else {
        vec![JSON, YAML, PROTOBUF, JSON_WATCH, PROTOBUF_WATCH]
    };
    let body_types: Vec<&'static str> = if custom {
        vec![JSON, YAML]
    } else {
        vec!["*/*"]
    };
    let patch_types: Vec<&'static str> = if custom {
        vec![JSON_PATCH, MERGE_PATCH, APPLY_PATCH]
    } else {
        vec![JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, APPLY_PATCH]
    };
    let deleted = if documents_deleted_object(i) {
        def.clone()
    } else {
        meta::STATUS.to_string()
    };
    let (collection, path_params) = if i.namespaced {
        (
            format!("{base}/namespaces/{{namespace}}/{}", i.plural),
            vec![namespace_param()],
        )
    } else {
        (format!("{base}/{}", i.plural), vec![])
    };
    let item = format!("{collection}/{{name}}");
    let mut item_params = path_params.clone();
    item_params.insert(0, name_param(kind));

    // One operation; `params` are the path's placeholders.
    let op = |method: &'static str,
              action: &'static str,
              id: String,
              description: String,
              params: &[Param],
              gvk: &(String, String, String)| Operation {
        method,
        action: Some(action),
        id,
        description,
        tag: tag(&i.group, &i.version),
        gvk: Some(gvk.clone()),
        params: params
            .iter()
            .cloned()
            .chain(action_params(action))
            .collect(),
        body: None,
        consumes: body_types.clone(),
        produces: object_types.clone(),
        responses: Vec::new(),
    };
    let list_description = if i.supports("watch") {
        format!("list or watch objects of kind {kind}")
    } else {
        format!("list objects of kind {kind}")
    };
    let mut routes: BTreeMap<String, Vec<Operation>> = BTreeMap::new();

    // The collection.
    if i.supports("list") {
        let mut o = op(
            "get",
            "list",
            format!("list{prefix}{ns}{kind}"),
            list_description.clone(),
            &path_params,
            &gvk,
        );
        o.produces = list_types.clone();
        o.responses = vec![(200, Some(list_def.clone())), (401, None)];
        routes.entry(collection.clone()).or_default().push(o);
        if i.namespaced {
            let mut o = op(
                "get",
                "list",
                format!("list{prefix}{kind}ForAllNamespaces"),
                list_description,
                &[],
                &gvk,
            );
            o.produces = list_types.clone();
            o.responses = vec![(200, Some(list_def.clone())), (401, None)];
            routes
                .entry(format!("{base}/{}", i.plural))
                .or_default()
                .push(o);
        }
    }
    if i.supports("create") {
        let mut o = op(
            "post",
            "post",
            format!("create{prefix}{ns}{kind}"),
            format!("create{}{kind}", article(kind)),
            &path_params,
            &gvk,
        );
        o.body = Some(Body::Object(def.clone()));
        o.responses = vec![
            (200, Some(def.clone())),
            (201, Some(def.clone())),
            (202, Some(def.clone())),
            (401, None),
        ];
        routes.entry(collection.clone()).or_default().push(o);
    }
    if i.supports("deletecollection") {
        let mut o = op(
            "delete",
            "deletecollection",
            format!("delete{prefix}Collection{ns}{kind}"),
            format!("delete collection of {kind}"),
            &path_params,
            &gvk,
        );
        o.body = Some(Body::DeleteOptions);
        o.responses = vec![(200, Some(meta::STATUS.to_string())), (401, None)];
        routes.entry(collection.clone()).or_default().push(o);
    }

    // One object and its subresources.
    let mut object_ops = |sub: Option<Subresource>, verbs: &[&str]| {
        let (path, suffix, of, target_gvk, target_def) = match sub {
            None => (
                item.clone(),
                String::new(),
                String::new(),
                gvk.clone(),
                def.clone(),
            ),
            Some(s) => {
                let (g, d) = match s {
                    Subresource::Scale => (
                        (
                            "autoscaling".to_string(),
                            "v1".to_string(),
                            "Scale".to_string(),
                        ),
                        meta::SCALE.to_string(),
                    ),
                    Subresource::Eviction => (
                        (
                            "policy".to_string(),
                            "v1".to_string(),
                            "Eviction".to_string(),
                        ),
                        "io.k8s.api.policy.v1.Eviction".to_string(),
                    ),
                    Subresource::Status
                    | Subresource::Finalize
                    | Subresource::Approval
                    | Subresource::EphemeralContainers
                    | Subresource::Resize => (gvk.clone(), def.clone()),
                    Subresource::Binding => (
                        (i.group.clone(), i.version.clone(), "Binding".to_string()),
                        "io.k8s.api.core.v1.Binding".to_string(),
                    ),
                    Subresource::Token => (
                        (
                            "authentication.k8s.io".to_string(),
                            "v1".to_string(),
                            "TokenRequest".to_string(),
                        ),
                        "io.k8s.api.authentication.v1.TokenRequest".to_string(),
                    ),
                    // Filtered out above: their operations are upstream's `connect` ones.
                    Subresource::Log
                    | Subresource::Exec
                    | Subresource::Attach
                    | Subresource::PortForward => (gvk.clone(), def.clone()),
                };
                let name = s.as_str();
                (
                    format!("{item}/{name}"),
                    operation_id_part(name, true),
                    format!(" {name} of"),
                    g,
                    d,
                )
            }
        };
        for verb in verbs {
            let o = match *verb {
                "get" => {
                    let mut o = op(
                        "get",
                        "get",
                        format!("read{prefix}{ns}{kind}{suffix}"),
                        format!("read{of} the specified {kind}"),
                        &item_params,
                        &target_gvk,
                    );
                    o.responses = vec![(200, Some(target_def.clone())), (401, None)];
                    o
                }
                "update" => {
                    let mut o = op(
                        "put",
                        "put",
                        format!("replace{prefix}{ns}{kind}{suffix}"),
                        format!("replace{of} the specified {kind}"),
                        &item_params,
                        &target_gvk,
                    );
                    o.body = Some(Body::Object(target_def.clone()));
                    o.responses = vec![
                        (200, Some(target_def.clone())),
                        (201, Some(target_def.clone())),
                        (401, None),
                    ];
                    o
                }
                "patch" => {
                    let mut o = op(
                        "patch",
                        "patch",
                        format!("patch{prefix}{ns}{kind}{suffix}"),
                        format!("partially update{of} the specified {kind}"),
                        &item_params,
                        &target_gvk,
                    );
                    o.body = Some(Body::Patch);
                    o.consumes = patch_types.clone();
                    o.responses = vec![
                        (200, Some(target_def.clone())),
                        (201, Some(target_def.clone())),
                        (401, None),
                    ];
                    o
                }
                // `pods/binding`, `pods/eviction`, `serviceaccounts/token`: a POST of the
                // subresource's kind, named like it.
                "create" if sub.is_some() => {
                    let mut params = item_params.clone();
                    params[0] = name_param(&target_gvk.2);
                    let mut o = op(
                        "post",
                        "post",
                        format!("create{prefix}{ns}{kind}{suffix}"),
                        format!("create{of}{}{kind}", article(kind)),
                        &params,
                        &target_gvk,
                    );
                    o.body = Some(Body::Object(target_def.clone()));
                    o.responses = vec![
                        (200, Some(target_def.clone())),
                        (201, Some(target_def.clone())),
                        (202, Some(target_def.clone())),
                        (401, None),
                    ];
                    o
                }
                "delete" if sub.is_none() => {
                    let mut o = op(
                        "delete",
                        "delete",
                        format!("delete{prefix}{ns}{kind}"),
                        format!("delete{}{kind}", article(kind)),
                        &item_params,
                        &target_gvk,
                    );
                    o.body = Some(Body::DeleteOptions);
                    o.responses = vec![
                        (200, Some(deleted.clone())),
                        (202, Some(deleted.clone())),
                        (401, None),
                    ];
                    o
                }
                _ => continue,
            };
            routes.entry(path.clone()).or_default().push(o);
        }
    };
    object_ops(None, &i.verbs);
    for sub in crate::discovery::subresources_by_name(r)
        .into_iter()
        .filter(|s| !s.is_streaming())
    {
        object_ops(Some(sub), sub.verbs());
    }
    // The streams proxied to kubelets: upstream's `connect` operations (`log` is a read),
    // answering plain bytes rather than an object.
    for sub in crate::discovery::subresources_by_name(r)
        .into_iter()
        .filter(|s| s.is_streaming())
    {
        let name = sub.as_str();
        let suffix = operation_id_part(name, true);
        for verb in sub.verbs() {
            let (method, action, word) = match (sub, *verb) {
                (Subresource::Log, _) => ("get", "get", "read"),
                (_, "get") => ("get", "connect", "connectGet"),
                _ => ("post", "connect", "connectPost"),
            };
            let mut o = op(
                method,
                action,
                format!("{word}{prefix}{ns}{kind}{suffix}"),
                format!("connect {method} requests to {name} of {kind}"),
                &item_params,
                &gvk,
            );
            o.produces = vec!["*/*"];
            o.responses = vec![(200, None), (401, None)];
            routes.entry(format!("{item}/{name}")).or_default().push(o);
        }
    }

    // The legacy `/watch/` paths: listed for built-in kinds, as upstream's installer
    // registers them; its CRD builder lists none for custom resources.
    if i.supports("watch") && !custom {
        let watch_base = if i.namespaced {
            format!("{base}/watch/namespaces/{{namespace}}/{}", i.plural)
        } else {
            format!("{base}/watch/{}", i.plural)
        };
        let list_doc = format!(
            "watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter with a list operation instead."
        );
        let event = Some(meta::WATCH_EVENT.to_string());
        let mut o = op(
            "get",
            "watchlist",
            format!("watch{prefix}{ns}{kind}List"),
            list_doc.clone(),
            &path_params,
            &gvk,
        );
        o.produces = list_types.clone();
        o.responses = vec![(200, event.clone()), (401, None)];
        routes.entry(watch_base.clone()).or_default().push(o);
        let mut o = op(
            "get",
            "watch",
            format!("watch{prefix}{ns}{kind}"),
            format!(
                "watch changes to an object of kind {kind}. deprecated: use the 'watch' parameter with a list operation instead, filtered to a single item with the 'fieldSelector' parameter."
            ),
            &item_params,
            &gvk,
        );
        o.produces = list_types.clone();
        o.responses = vec![(200, event.clone()), (401, None)];
        routes
            .entry(format!("{watch_base}/{{name}}"))
            .or_default()
            .push(o);
        if i.namespaced {
            let mut o = op(
                "get",
                "watchlist",
                format!("watch{prefix}{kind}ListForAllNamespaces"),
                list_doc,
                &[],
                &gvk,
            );
            o.produces = list_types.clone();
            o.responses = vec![(200, event), (401, None)];
            routes
                .entry(format!("{base}/watch/{}", i.plural))
                .or_default()
                .push(o);
        }
    }
    routes
        .into_iter()
        .map(|(path, ops)| Route { path, ops })
        .collect()
}

/// A discovery document's route: one GET with no parameters.
fn discovery_route(
    path: String,
    id: String,
    description: &str,
    tag: String,
    answer: &str,
    types: &[&'static str],
) -> Route {
    Route {
        path,
        ops: vec![Operation {
            method: "get",
            action: None,
            id,
            description: description.to_string(),
            tag,
            gvk: None,
            params: Vec::new(),
            body: None,
            consumes: types.to_vec(),
            produces: types.to_vec(),
            responses: vec![(200, Some(answer.to_string())), (401, None)],
        }],
    }
}

/// `/api/v1/` or `/apis/<group>/<version>/`: the group version's resource list.
pub(crate) fn group_version_route(group: &str, version: &str) -> Route {
    discovery_route(
        format!("{}/", group_version_path(group, version)),
        format!("get{}APIResources", id_prefix(group, version)),
        "get available resources",
        tag(group, version),
        meta::API_RESOURCE_LIST,
        &[JSON, YAML, PROTOBUF],
    )
}

/// `/apis/<group>/`: the group's versions.
pub(crate) fn group_route(group: &str) -> Route {
    discovery_route(
        format!("/apis/{group}/"),
        format!("get{}APIGroup", operation_id_part(group_stem(group), true)),
        "get information of a group",
        group_tag(group),
        meta::API_GROUP,
        &[JSON, YAML, PROTOBUF],
    )
}

/// `/api/`: the core group's versions.
pub(crate) fn core_versions_route() -> Route {
    discovery_route(
        "/api/".into(),
        "getCoreAPIVersions".into(),
        "get available API versions",
        "core".into(),
        meta::API_VERSIONS,
        &[JSON, YAML, PROTOBUF],
    )
}

/// `/apis/`: every other group.
pub(crate) fn groups_route() -> Route {
    discovery_route(
        "/apis/".into(),
        "getAPIVersions".into(),
        "get available API versions",
        "apis".into(),
        meta::API_GROUP_LIST,
        &[JSON, YAML, PROTOBUF],
    )
}

/// `/version/`: the server's version.
pub(crate) fn version_route() -> Route {
    discovery_route(
        "/version/".into(),
        "getCodeVersion".into(),
        "get the version information for this server",
        "version".into(),
        meta::VERSION_INFO,
        &[JSON],
    )
}

fn response_description(code: u16) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        401 => "Unauthorized",
        _ => "",
    }
}

/// A parameter written out inline.
fn param_json(p: &Param, dialect: Dialect) -> Value {
    let mut o = Map::new();
    if !p.description.is_empty() {
        o.insert("description".into(), json!(p.description));
    }
    o.insert(
        "in".into(),
        json!(match p.location {
            In::Query => "query",
            In::Path => "path",
        }),
    );
    o.insert("name".into(), json!(p.name));
    if p.required {
        o.insert("required".into(), json!(true));
    }
    match dialect {
        Dialect::V2 => {
            o.insert("type".into(), json!(p.ty));
            o.insert("uniqueItems".into(), json!(true));
        }
        Dialect::V3 => {
            o.insert("schema".into(), json!({"type": p.ty, "uniqueItems": true}));
        }
    }
    Value::Object(o)
}

/// Renders routes into a document's `paths`; in v2, `shared` collects the parameters
/// written by reference (upstream's `parameters` section).
fn render(
    routes: &[Route],
    dialect: Dialect,
    shared: &mut BTreeMap<&'static str, Value>,
) -> Map<String, Value> {
    let prefix = match dialect {
        Dialect::V2 => "#/definitions/",
        Dialect::V3 => "#/components/schemas/",
    };
    let reference = |def: &str| json!({ "$ref": format!("{prefix}{def}") });
    fn param(p: &Param, dialect: Dialect, shared: &mut BTreeMap<&'static str, Value>) -> Value {
        match (dialect, p.shared) {
            (Dialect::V2, Some(name)) => {
                shared.entry(name).or_insert_with(|| param_json(p, dialect));
                json!({ "$ref": format!("#/parameters/{name}") })
            }
            _ => param_json(p, dialect),
        }
    }
    let mut sorted: Vec<&Route> = routes.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut paths = Map::new();
    for route in sorted {
        // Upstream hoists what every operation of the path takes to the path.
        let common: Vec<Param> = route
            .ops
            .first()
            .map(|first| {
                first
                    .params
                    .iter()
                    .filter(|p| route.ops.iter().all(|o| o.params.contains(p)))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let mut item: BTreeMap<&str, Value> = BTreeMap::new();
        for op in &route.ops {
            let mut own: Vec<&Param> = op.params.iter().filter(|p| !common.contains(p)).collect();
            own.sort_by_key(|p| p.name);
            let mut params: Vec<(&str, Value)> = own
                .iter()
                .map(|p| (p.name, param(p, dialect, shared)))
                .collect();
            let mut o = Map::new();
            if dialect == Dialect::V2 {
                o.insert("consumes".into(), json!(op.consumes));
            }
            o.insert("description".into(), json!(op.description));
            o.insert("operationId".into(), json!(op.id));
            let body_schema = op.body.as_ref().map(|b| match b {
                Body::Object(d) => reference(d),
                Body::Patch => reference(meta::PATCH),
                Body::DeleteOptions => reference(meta::DELETE_OPTIONS),
            });
            let body_required = !matches!(op.body, Some(Body::DeleteOptions));
            match (dialect, &op.body, body_schema) {
                (Dialect::V2, Some(body), Some(schema)) => {
                    let p = match body {
                        Body::Patch => {
                            shared.entry("body-78PwaGsr").or_insert_with(|| {
                                json!({"in": "body", "name": "body", "required": true, "schema": schema})
                            });
                            json!({"$ref": "#/parameters/body-78PwaGsr"})
                        }
                        Body::DeleteOptions => {
                            shared.entry("body-2Y1dVQaQ").or_insert_with(
                                || json!({"in": "body", "name": "body", "schema": schema}),
                            );
                            json!({"$ref": "#/parameters/body-2Y1dVQaQ"})
                        }
                        Body::Object(_) => {
                            json!({"in": "body", "name": "body", "required": true, "schema": schema})
                        }
                    };
                    params.push(("body", p));
                    params.sort_by(|a, b| a.0.cmp(b.0));
                }
                (Dialect::V3, Some(_), Some(schema)) => {
                    let content: Map<String, Value> = op
                        .consumes
                        .iter()
                        .map(|c| (c.to_string(), json!({ "schema": schema })))
                        .collect();
                    let mut body = json!({ "content": content });
                    if body_required {
                        body["required"] = json!(true);
                    }
                    o.insert("requestBody".into(), body);
                }
                _ => {}
            }
            if !params.is_empty() {
                o.insert(
                    "parameters".into(),
                    Value::Array(params.into_iter().map(|(_, v)| v).collect()),
                );
            }
            if dialect == Dialect::V2 {
                o.insert("produces".into(), json!(op.produces));
            }
            let mut responses = Map::new();
            for (code, def) in &op.responses {
                let mut r = Map::new();
                match (def, dialect) {
                    (Some(d), Dialect::V2) => {
                        r.insert("description".into(), json!(response_description(*code)));
                        r.insert("schema".into(), reference(d));
                    }
                    (Some(d), Dialect::V3) => {
                        let mut types = op.produces.clone();
                        types.sort_unstable();
                        let content: Map<String, Value> = types
                            .iter()
                            .map(|t| (t.to_string(), json!({ "schema": reference(d) })))
                            .collect();
                        r.insert("content".into(), Value::Object(content));
                        r.insert("description".into(), json!(response_description(*code)));
                    }
                    (None, _) => {
                        r.insert("description".into(), json!(response_description(*code)));
                    }
                }
                responses.insert(code.to_string(), Value::Object(r));
            }
            o.insert("responses".into(), Value::Object(responses));
            if dialect == Dialect::V2 {
                o.insert("schemes".into(), json!(["https"]));
            }
            o.insert("tags".into(), json!([op.tag]));
            if let Some(action) = op.action {
                o.insert("x-kubernetes-action".into(), json!(action));
            }
            if let Some((g, v, k)) = &op.gvk {
                o.insert(
                    "x-kubernetes-group-version-kind".into(),
                    json!({"group": g, "kind": k, "version": v}),
                );
            }
            item.insert(op.method, Value::Object(o));
        }
        if !common.is_empty() {
            let mut common: Vec<&Param> = common.iter().collect();
            common.sort_by_key(|p| p.name);
            item.insert(
                "parameters",
                Value::Array(
                    common
                        .into_iter()
                        .map(|p| param(p, dialect, shared))
                        .collect(),
                ),
            );
        }
        paths.insert(
            route.path.clone(),
            Value::Object(item.into_iter().map(|(k, v)| (k.to_string(), v)).collect()),
        );
    }
    paths
}

/// The `paths` of a Swagger 2.0 document and its shared `parameters`.
pub(crate) fn render_v2(routes: &[Route]) -> (Map<String, Value>, Map<String, Value>) {
    let mut shared = BTreeMap::new();
    let paths = render(routes, Dialect::V2, &mut shared);
    let params = shared
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    (paths, params)
}

/// The `paths` of an OpenAPI 3.0 document (parameters are never shared there).
pub(crate) fn render_v3(routes: &[Route]) -> Map<String, Value> {
    render(routes, Dialect::V3, &mut BTreeMap::new())
}
