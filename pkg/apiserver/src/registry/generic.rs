//! Every verb, once, for every kind: create, get, list, update, patch, delete and their
//! subresource forms, with upstream's metadata rules, preconditions and errors. Kinds
//! differ only through their [`Strategy`](super::Strategy).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine;
use bytes::Bytes;
use k1s_apimachinery::{
    ErrorList, FieldError, FieldSelector, GroupResource, Path, Selector, Status,
};
use k1s_store::{KeyValue, Revision, Store, StoreError};
use serde_json::{Value, json};

use super::errors::{OPTIMISTIC_LOCK_MSG, Operation, store_error};
use super::{Registry, Resource, ResourceInfo, Subresource};
use crate::auth::UserInfo;
use crate::kinds::core::service_reservations::Reservations;
use crate::meta;
use crate::schema::decode;

/// How unknown fields in a request are treated (`fieldValidation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    /// Drop them silently.
    Ignore,
    /// Drop them and warn (the server default).
    #[default]
    Warn,
    /// Refuse the request.
    Strict,
}

impl FieldValidation {
    /// Parses the query parameter; upstream's error for anything else.
    pub fn parse(s: Option<&str>) -> Result<Self, Status> {
        match s {
            None | Some("") | Some("Warn") => Ok(Self::Warn),
            Some("Ignore") => Ok(Self::Ignore),
            Some("Strict") => Ok(Self::Strict),
            Some(other) => Err(Status::bad_request(&format!(
                "fieldValidation parameter unsupported: {other}"
            ))),
        }
    }
}

/// Who writes and how.
#[derive(Debug, Clone, Default)]
pub struct WriteContext {
    /// The authenticated user.
    pub user: UserInfo,
    /// `dryRun=All`: do everything but store.
    pub dry_run: bool,
    /// The field manager (`fieldManager`, or derived from the user agent).
    pub field_manager: String,
    /// `fieldValidation`.
    pub field_validation: FieldValidation,
    /// `force` (server-side apply).
    pub force: bool,
    /// The object comes from server-side apply, which recorded its managed fields.
    pub applied: bool,
    /// The object is a patch applied to the current version: it is conditional on that
    /// version (retried on a conflict) even without a resourceVersion of its own, so
    /// kinds that refuse unconditional updates accept it, as upstream's patcher does.
    pub patch: bool,
}

/// A successful write with the warnings to send as `Warning:` headers.
#[derive(Debug)]
pub struct Written {
    /// The object as stored (or as it would be, for dry runs).
    pub object: Value,
    /// Whether the object was created (201) rather than updated (200).
    pub created: bool,
    /// Warnings for the client.
    pub warnings: Vec<String>,
}

/// Parameters of a list.
#[derive(Debug, Default)]
pub struct ListOptions {
    /// `labelSelector`.
    pub label_selector: Option<Selector>,
    /// `fieldSelector`.
    pub field_selector: Option<FieldSelector>,
    /// `limit` (0 = none).
    pub limit: usize,
    /// `continue`.
    pub continue_token: Option<String>,
    /// `resourceVersion`.
    pub resource_version: Option<String>,
    /// `resourceVersionMatch`.
    pub resource_version_match: Option<String>,
}

/// A page of a list.
#[derive(Debug, Default)]
pub struct ListPage {
    /// Matching objects in key order.
    pub items: Vec<Value>,
    /// The revision of the list.
    pub revision: Revision,
    /// Continue token when more remain.
    pub continue_token: Option<String>,
    /// Objects remaining after this page, when known.
    pub remaining: Option<i64>,
}

/// Parameters of a delete (`DeleteOptions` body and query).
#[derive(Debug, Default, Clone)]
pub struct DeleteOptions {
    /// `gracePeriodSeconds`.
    pub grace_period_seconds: Option<i64>,
    /// `propagationPolicy`: Orphan, Background or Foreground.
    pub propagation_policy: Option<String>,
    /// `orphanDependents` (deprecated form of Orphan).
    pub orphan_dependents: Option<bool>,
    /// `preconditions.uid`.
    pub precondition_uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub precondition_resource_version: Option<String>,
}

/// What a delete did.
#[derive(Debug)]
pub enum Deleted {
    /// The object is gone; this was its last state.
    Gone(Value),
    /// The object now waits for finalizers or its grace period.
    Pending(Value),
}

/// Finalizer that makes the garbage collector orphan dependents first.
pub const FINALIZER_ORPHAN: &str = "orphan";
/// Finalizer that makes the garbage collector delete dependents first.
pub const FINALIZER_FOREGROUND: &str = "foregroundDeletion";

/// Encodes a continue token the way upstream does (base64 of JSON with the revision and
/// the key to start from).
pub fn encode_continue(revision: Revision, last_key_suffix: &str) -> String {
    let body =
        json!({"v": "meta.k8s.io/v1", "rv": revision, "start": format!("{last_key_suffix}\u{0}")});
    base64::engine::general_purpose::URL_SAFE.encode(body.to_string())
}

/// Decodes a continue token into (revision, key suffix to start after).
pub fn decode_continue(token: &str) -> Result<(Revision, String), Status> {
    let bad = || {
        Status::bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        )
    };
    let raw = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token))
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    if v.get("v").and_then(Value::as_str) != Some("meta.k8s.io/v1") {
        return Err(bad());
    }
    let rv = v
        .get("rv")
        .and_then(Value::as_i64)
        .filter(|r| *r > 0)
        .ok_or_else(bad)?;
    let start = v.get("start").and_then(Value::as_str).ok_or_else(bad)?;
    let start = start.trim_end_matches('\u{0}');
    if start.contains("..") || start.starts_with('/') {
        return Err(bad());
    }
    Ok((rv, start.to_string()))
}

/// A check of an object about to be written, with the writer (RBAC's escalation check).
pub type WriteCheck = Arc<
    dyn Fn(&super::ResourceInfo, Option<&str>, &Value, &WriteContext) -> Result<(), Status>
        + Send
        + Sync,
>;

/// The generic registry over one store.
#[derive(Clone)]
pub struct GenericStore {
    store: Store,
    registry: Arc<Registry>,
    write_check: Arc<std::sync::OnceLock<WriteCheck>>,
    /// Service values reserved in a datastore other servers share.
    reservations: Arc<std::sync::OnceLock<Arc<Reservations>>>,
    service_account_admission: Arc<AtomicBool>,
    storage_protection_admission: Arc<AtomicBool>,
    node_taint_admission: Arc<AtomicBool>,
    admission: Arc<crate::admission::Admission>,
}

/// Upstream's answer when a delete precondition on the UID fails.
fn uid_precondition_failed(expected: &str, actual: &str) -> String {
    format!("Precondition failed: UID in precondition: {expected}, UID in object meta: {actual}")
}

impl GenericStore {
    /// A registry over `store`.
    pub fn new(store: Store, registry: Arc<Registry>) -> Self {
        Self {
            store,
            registry,
            write_check: Arc::default(),
            reservations: Arc::default(),
            service_account_admission: Arc::new(AtomicBool::new(true)),
            storage_protection_admission: Arc::new(AtomicBool::new(true)),
            node_taint_admission: Arc::new(AtomicBool::new(true)),
            admission: Arc::new(crate::admission::Admission::default()),
        }
    }

    /// Admission state (the webhooks' `matchConditions` evaluator).
    pub fn admission(&self) -> &Arc<crate::admission::Admission> {
        &self.admission
    }

    /// Decodes and defaults an object a mutating webhook patched, as upstream decodes the
    /// patched JSON into the kind (unknown fields dropped) and defaults it again.
    fn normalize_patched(
        &self,
        res: &Resource,
        storage: &Resource,
        obj: Value,
    ) -> Result<Value, Status> {
        let mut ignored = Vec::new();
        let obj = self
            .decode_request(res, obj, FieldValidation::Ignore, &mut ignored)
            .map_err(|s| Status::internal_error(&s.message))?;
        let mut stored = self.stored_form(res, obj)?;
        storage.strategy.default(&mut stored);
        self.served_form(res, stored)
    }

    /// The mutating webhooks on `obj` (stored form), which comes back patched.
    async fn admit_mutating_webhooks(
        &self,
        res: &Resource,
        storage: &Resource,
        attrs: &crate::admission::Attributes<'_>,
        obj: &mut Value,
        warnings: &mut Vec<String>,
    ) -> Result<(), Status> {
        use crate::admission::webhook;
        if !webhook::configured(self, webhook::Kind::Mutating) {
            return Ok(());
        }
        let mut served = self.served_form(res, obj.clone())?;
        let normalize = |v: Value| self.normalize_patched(res, storage, v);
        let got = webhook::mutate(self, attrs, Some(&mut served), None, &normalize).await?;
        warnings.extend(got);
        *obj = self.stored_form(res, served)?;
        Ok(())
    }

    /// Whether an update's admission reads the old object through [`Attributes`]: when
    /// webhooks are configured, or pod security checks the resource.
    ///
    /// [`Attributes`]: crate::admission::Attributes
    fn admission_reads_old(&self, info: &ResourceInfo, subresource: &str) -> bool {
        use crate::admission::{podsecurity, webhook};
        (subresource.is_empty() && podsecurity::applies_to(&info.group, &info.plural))
            || webhook::configured(self, webhook::Kind::Mutating)
            || webhook::configured(self, webhook::Kind::Validating)
    }

    /// The LimitRanges of a namespace, from the watch cache.
    fn limit_ranges(&self, namespace: &str) -> Vec<Value> {
        let snapshot = self.registry.snapshot();
        let Some(ranges) = snapshot.get("", "v1", "limitranges") else {
            return Vec::new();
        };
        let (items, _, _) =
            self.store
                .cache()
                .list(&ranges.info.collection_prefix(Some(namespace)), None, 0);
        items
            .iter()
            .filter_map(|kv| serde_json::from_slice(&kv.value).ok())
            .collect()
    }

    /// Upstream's NodeRestriction admission (a mutating plugin, so it runs before the
    /// mutating webhooks): kubelets change only what belongs to their node.
    pub(crate) fn admit_node_restriction(
        &self,
        req: &crate::admission::noderestriction::Request<'_>,
    ) -> Result<(), Status> {
        if crate::admission::noderestriction::node_identity(req.user).is_none() {
            return Ok(());
        }
        crate::admission::noderestriction::admit(req, self)
    }

    /// A core (v1) object as stored now, for admission's look-ups.
    fn core_object(&self, plural: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let snapshot = self.registry.snapshot();
        let res = snapshot.get("", "v1", plural)?;
        self.current(res, namespace, name).map(|(obj, _)| obj)
    }

    /// LimitRanger's checks on a new pod or claim (upstream's validating half of it).
    fn admit_limit_ranges(
        &self,
        attrs: &crate::admission::Attributes<'_>,
        obj: &Value,
    ) -> Result<(), Status> {
        use crate::admission::{Operation, limitranger};
        let info = attrs.info;
        if attrs.operation != Operation::Create
            || !info.group.is_empty()
            || attrs.namespace.is_empty()
        {
            return Ok(());
        }
        let errs = match info.plural.as_str() {
            "pods" => limitranger::validate_pod(&self.limit_ranges(attrs.namespace), obj),
            "persistentvolumeclaims" => {
                limitranger::validate_claim(&self.limit_ranges(attrs.namespace), obj)
            }
            _ => return Ok(()),
        };
        if errs.is_empty() {
            return Ok(());
        }
        Err(Status::forbidden(
            &info.group_resource(),
            attrs.name,
            &limitranger::aggregate(&errs),
        ))
    }

    /// The validating half of the admission chain, in upstream's plugin order:
    /// LimitRanger, PodSecurity, ValidatingAdmissionPolicy, then ValidatingAdmissionWebhook
    /// (ResourceQuota, last, is charged by the caller once the object is final). `attrs` is
    /// absent for subresources whose objects webhooks do not see; `obj` is in stored form.
    async fn admit_validating(
        &self,
        res: &Resource,
        attrs: Option<&crate::admission::Attributes<'_>>,
        policy: &crate::admission::policy::Request<'_>,
        obj: &Value,
        warnings: &mut Vec<String>,
    ) -> Result<(), Status> {
        use crate::admission::{podsecurity, webhook};
        let served = match attrs {
            Some(attrs) => {
                self.admit_limit_ranges(attrs, obj)?;
                if attrs.operation == crate::admission::Operation::Create
                    && attrs.subresource.is_empty()
                    && attrs.info.group.is_empty()
                    && attrs.info.plural == "pods"
                {
                    let class = self.pod_runtime_class(obj, attrs.name)?;
                    crate::admission::runtimeclass::validate(obj, class.as_ref()).map_err(
                        |why| Status::forbidden(&attrs.info.group_resource(), attrs.name, &why),
                    )?;
                }
                let validating = webhook::configured(self, webhook::Kind::Validating);
                if validating || podsecurity::applies(attrs) {
                    let served = self.served_form(res, obj.clone())?;
                    warnings.extend(podsecurity::admit(self, attrs, &served)?);
                    validating.then_some(served)
                } else {
                    None
                }
            }
            None => None,
        };
        warnings.extend(Box::pin(crate::admission::policy::admit(self, policy)).await?);
        if let (Some(attrs), Some(served)) = (attrs, served) {
            warnings.extend(webhook::validate(self, attrs, Some(&served), None).await?);
        }
        Ok(())
    }

    /// Sets the check every create and update of a main resource goes through (only the
    /// first call counts).
    pub fn set_write_check(&self, check: WriteCheck) {
        let _ = self.write_check.set(check);
    }

    fn check_write(
        &self,
        info: &super::ResourceInfo,
        namespace: Option<&str>,
        obj: &Value,
        ctx: &WriteContext,
    ) -> Result<(), Status> {
        match self.write_check.get() {
            Some(check) => check(info, namespace, obj, ctx),
            None => Ok(()),
        }
    }

    /// Makes Services reserve their cluster IPs and node ports in the store (several
    /// servers share it); only the first call counts.
    pub fn set_reservations(&self, reservations: Arc<Reservations>) {
        let _ = self.reservations.set(reservations);
    }

    /// The Service reservations, when the datastore is shared.
    pub fn reservations(&self) -> Option<&Arc<Reservations>> {
        self.reservations.get()
    }

    /// The reservations a write of `info` goes through.
    fn reservations_for(&self, info: &super::ResourceInfo) -> Option<Arc<Reservations>> {
        (info.group.is_empty() && info.plural == "services")
            .then(|| self.reservations.get().cloned())
            .flatten()
    }

    /// The store underneath.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The registry.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    // === decoding ===

    /// Turns stored bytes into the object as served by `res` (its version), with
    /// `metadata.resourceVersion` set to the revision of its last write.
    pub fn decode_stored(&self, res: &Resource, kv: &KeyValue) -> Result<Value, Status> {
        let mut obj: Value = serde_json::from_slice(&kv.value).map_err(|e| {
            Status::internal_error(&format!("stored object {} is unreadable: {e}", kv.key))
        })?;
        set_version_in_place(&mut obj, kv.mod_revision);
        self.served_form(res, obj)
    }

    /// The served JSON of a stored object as [`decode_stored`](Self::decode_stored) would
    /// give it, spliced from the stored bytes without decoding them, where `res` serves
    /// them as stored (a built-in kind's storage version: no conversion, no defaults on
    /// read, Go's field order) and they are in that order. `None`: decode them instead.
    pub fn served_json(&self, res: &Resource, kv: &KeyValue) -> Option<Vec<u8>> {
        if !Self::serves_as_stored(res) {
            return None;
        }
        let info = &res.info;
        super::served_json::object(&kv.value, &info.kind, &info.api_version(), kv.mod_revision)
    }

    /// The served `PartialObjectMetadata` JSON of a stored object, under the conditions
    /// of [`served_json`](Self::served_json).
    pub fn served_metadata_json(&self, res: &Resource, kv: &KeyValue) -> Option<Vec<u8>> {
        if !Self::serves_as_stored(res) {
            return None;
        }
        let info = &res.info;
        super::served_json::partial_metadata(
            &kv.value,
            &info.kind,
            &info.api_version(),
            kv.mod_revision,
        )
    }

    /// Whether `res` serves stored objects as they are stored but for their version:
    /// [`served_form`](Self::served_form) only sets the type and Go's field order. Custom
    /// resources are served with sorted keys and defaults applied on read.
    fn serves_as_stored(res: &Resource) -> bool {
        !res.info.custom && res.info.storage_version && res.conversion.is_none()
    }

    fn served_form(&self, res: &Resource, obj: Value) -> Result<Value, Status> {
        // A conversion on the storage version itself (a CRD's webhook) converts objects
        // still stored in an older version.
        let mut obj = match &res.conversion {
            Some(c) => c.served_form(self, obj)?,
            _ => obj,
        };
        res.strategy.default_on_read(&mut obj);
        set_type_meta(&mut obj, &res.info);
        Ok(obj)
    }

    fn stored_form(&self, res: &Resource, obj: Value) -> Result<Value, Status> {
        match &res.conversion {
            Some(c) => c.stored_form(self, obj),
            _ => Ok(obj),
        }
    }

    /// The resource that holds the strategy for objects of `res` (its storage version).
    fn storage_of(&self, res: &Arc<Resource>) -> Arc<Resource> {
        if res.info.storage_version {
            return res.clone();
        }
        self.registry
            .snapshot()
            .storage_resource(&res.info.key_prefix)
            .cloned()
            .unwrap_or_else(|| res.clone())
    }

    /// Decodes a request body (already parsed JSON) for `res`: type checks against the
    /// schema, unknown fields handled per `validation`, kind and apiVersion checked.
    pub fn decode_request(
        &self,
        res: &Resource,
        obj: Value,
        validation: FieldValidation,
        warnings: &mut Vec<String>,
    ) -> Result<Value, Status> {
        self.decode_request_with(res, obj, validation, warnings, Vec::new())
    }

    /// [`GenericStore::decode_request`] of a `Strict` body whose reader found the strict
    /// errors `duplicates` (repeated keys): they are reported after the unknown fields in
    /// one `strict decoding error`, once the body decodes.
    pub fn decode_request_with(
        &self,
        res: &Resource,
        mut obj: Value,
        validation: FieldValidation,
        warnings: &mut Vec<String>,
        duplicates: Vec<String>,
    ) -> Result<Value, Status> {
        let info = &res.info;
        let handled = |detail: &str| {
            Status::bad_request(&format!(
                "{} in version \"{}\" cannot be handled as a {}: {detail}",
                info.kind, info.version, info.kind
            ))
        };
        if !obj.is_object() {
            return Err(handled(&format!(
                "json: cannot unmarshal {} into Go value of type {}",
                match obj {
                    Value::Array(_) => "array",
                    Value::String(_) => "string",
                    Value::Number(_) => "number",
                    Value::Bool(_) => "bool",
                    _ => "null",
                },
                info.kind
            )));
        }
        check_type_meta(&obj, info)?;
        let snapshot = self.registry.snapshot();
        let defs = &snapshot.definitions;
        let schema = crate::schema::model::Schema::reference(info.definition.clone());
        let decoded = res
            .strategy
            .decode(&mut obj, &schema, defs)
            .map_err(|e| match e {
                DecodeFailure::Type(msg) => handled(&msg),
                DecodeFailure::Status(s) => *s,
            })?;
        if !decoded.unknown_fields.is_empty() || !duplicates.is_empty() {
            let mut list: Vec<String> = decoded
                .unknown_fields
                .iter()
                .map(|f| format!("unknown field \"{f}\""))
                .collect();
            match validation {
                FieldValidation::Ignore => {}
                FieldValidation::Warn => warnings.extend(list.into_iter().chain(duplicates)),
                FieldValidation::Strict => {
                    list.extend(duplicates);
                    return Err(handled(&format!(
                        "strict decoding error: {}",
                        list.join(", ")
                    )));
                }
            }
        }
        if !decoded.invalid.is_empty() {
            let name = meta::name(&obj).to_string();
            return Err(Self::invalid(res, &name, &decoded.invalid));
        }
        set_type_meta(&mut obj, info);
        Ok(obj)
    }

    // === reads ===

    /// One object.
    pub fn get(
        &self,
        res: &Resource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, Status> {
        let key = res.info.key(namespace, name);
        match self.store.get(&key) {
            Some(kv) => self.decode_stored(res, &kv),
            None => Err(Status::not_found(&res.info.group_resource(), name)),
        }
    }

    fn current(
        &self,
        res: &Resource,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<(Value, Revision)> {
        let kv = self.store.get(&res.info.key(namespace, name))?;
        let obj = self.decode_stored(res, &kv).ok()?;
        Some((obj, kv.mod_revision))
    }

    /// Whether an object passes the list's selectors.
    pub fn matches(&self, res: &Resource, obj: &Value, opts: &ListOptions) -> bool {
        if let Some(sel) = &opts.label_selector
            && !sel.matches(&meta::labels(obj))
        {
            return false;
        }
        if let Some(fs) = &opts.field_selector {
            let extra = res.strategy.field_labels(obj);
            return fs.matches(|field| match field {
                "metadata.name" => Some(meta::name(obj).to_string()),
                "metadata.namespace" => Some(meta::namespace(obj).to_string()),
                other => extra
                    .iter()
                    .find(|(k, _)| *k == other)
                    .map(|(_, v)| v.clone()),
            });
        }
        true
    }

    /// Checks that every field in the selector is one the kind supports.
    pub fn check_field_selector(&self, res: &Resource, fs: &FieldSelector) -> Result<(), Status> {
        let probe = res.strategy.field_labels(&json!({}));
        for req in fs.requirements() {
            let field = req.field.as_str();
            let known = matches!(field, "metadata.name" | "metadata.namespace")
                || probe.iter().any(|(k, _)| *k == field);
            if !known {
                return Err(Status::bad_request(&format!(
                    "field label not supported: {field}"
                )));
            }
        }
        Ok(())
    }

    /// A page of a list, honouring selectors, limit/continue and resourceVersion rules.
    pub async fn list(
        &self,
        res: &Resource,
        namespace: Option<&str>,
        opts: &ListOptions,
    ) -> Result<ListPage, Status> {
        let mut items = Vec::new();
        let mut page = self
            .list_each(res, namespace, opts, |obj| {
                items.push(obj);
                Ok(())
            })
            .await?;
        page.items = items;
        Ok(page)
    }

    /// Like [`GenericStore::list`], but hands each matching object to `visit` as soon as
    /// it is decoded instead of collecting them (the returned page has no items): a
    /// response can be encoded one object at a time, so a list of 100k objects never
    /// holds 100k decoded objects at once.
    pub async fn list_each(
        &self,
        res: &Resource,
        namespace: Option<&str>,
        opts: &ListOptions,
        mut visit: impl FnMut(Value) -> Result<(), Status>,
    ) -> Result<ListPage, Status> {
        self.list_stored(res, namespace, opts, |kv| {
            let obj = self.decode_stored(res, kv)?;
            if !self.matches(res, &obj, opts) {
                return Ok(false);
            }
            visit(obj)?;
            Ok(true)
        })
        .await
    }

    /// [`GenericStore::list_each`] writing each matching object's served JSON to `out`,
    /// comma-separated: spliced from the stored bytes where nothing filters the list and
    /// the resource allows ([`served_json`](Self::served_json)), else decoded and encoded.
    pub async fn list_json(
        &self,
        res: &Resource,
        namespace: Option<&str>,
        opts: &ListOptions,
        out: &mut Vec<u8>,
    ) -> Result<ListPage, Status> {
        let filtered = opts.label_selector.is_some() || opts.field_selector.is_some();
        let mut first = true;
        self.list_stored(res, namespace, opts, |kv| {
            let spliced = if filtered {
                None
            } else {
                self.served_json(res, kv)
            };
            let start = out.len();
            if !first {
                out.push(b',');
            }
            match spliced {
                Some(bytes) => out.extend_from_slice(&bytes),
                None => {
                    let obj = self.decode_stored(res, kv)?;
                    if !self.matches(res, &obj, opts) {
                        out.truncate(start);
                        return Ok(false);
                    }
                    serde_json::to_writer(&mut *out, &obj)
                        .map_err(|e| Status::internal_error(&format!("cannot encode list: {e}")))?;
                }
            }
            first = false;
            Ok(true)
        })
        .await
    }

    /// The paging of a list: hands each stored object of the page to `visit`, which
    /// answers whether it matched (and counts toward the limit).
    async fn list_stored(
        &self,
        res: &Resource,
        namespace: Option<&str>,
        opts: &ListOptions,
        mut visit: impl FnMut(&KeyValue) -> Result<bool, Status>,
    ) -> Result<ListPage, Status> {
        let prefix = res.info.collection_prefix(namespace);
        let (mut revision, mut start_after);
        if let Some(token) = opts.continue_token.as_deref().filter(|t| !t.is_empty()) {
            if opts
                .resource_version
                .as_deref()
                .is_some_and(|rv| !rv.is_empty())
            {
                return Err(Status::bad_request(
                    "specifying resource version is not allowed when using continue",
                ));
            }
            let (rv, start) = decode_continue(token)?;
            revision = rv;
            start_after = Some(format!("{prefix}{start}"));
        } else {
            revision = self.list_revision(opts).await?;
            start_after = None;
        }
        let mut found = 0;
        let mut last_key: Option<String> = None;
        let mut more;
        let mut at;
        // With selectors a page may need several store pages to fill.
        loop {
            let want = if opts.limit > 0 {
                opts.limit - found
            } else {
                0
            };
            let page = self
                .store
                .list(
                    &prefix,
                    revision,
                    start_after.as_deref(),
                    want.max(if opts.limit > 0 { 1 } else { 0 }),
                )
                .await
                .map_err(|e| match e {
                    StoreError::Compacted { .. } if opts.continue_token.is_some() => {
                        Status::resource_expired(CONTINUE_EXPIRED)
                    }
                    StoreError::Compacted { requested, oldest } => Status::resource_expired(
                        &format!("too old resource version: {requested} ({oldest})"),
                    ),
                    other => store_error(&res.info, "", Operation::Read, other),
                })?;
            at = page.revision;
            more = page.more;
            for kv in &page.items {
                last_key = Some(kv.key.clone());
                if visit(kv)? {
                    found += 1;
                }
            }
            if !more || opts.limit == 0 || found >= opts.limit {
                break;
            }
            revision = at;
            start_after = last_key.clone();
        }
        let continue_token = match (&last_key, more) {
            (Some(k), true) => Some(encode_continue(at, k.strip_prefix(&prefix).unwrap_or(k))),
            _ => None,
        };
        // Upstream counts what follows a page only when nothing filters the list: with a
        // selector the count of keys says nothing about the matching objects.
        let remaining = match (&continue_token, &last_key) {
            (Some(_), Some(k))
                if opts.label_selector.is_none() && opts.field_selector.is_none() =>
            {
                match self.store.count(&prefix, at, Some(k)).await {
                    Ok(n) => i64::try_from(n).ok(),
                    Err(e) => {
                        tracing::debug!(error = %e, "remainingItemCount not counted");
                        None
                    }
                }
            }
            _ => None,
        };
        Ok(ListPage {
            items: Vec::new(),
            revision: at,
            continue_token,
            remaining,
        })
    }

    /// The revision a list without continue reads at (0 = newest).
    async fn list_revision(&self, opts: &ListOptions) -> Result<Revision, Status> {
        let rv = opts.resource_version.as_deref().unwrap_or("");
        let exact = match opts.resource_version_match.as_deref() {
            None | Some("") => false,
            Some("Exact") => true,
            Some("NotOlderThan") => false,
            Some(other) => {
                return Err(Status::bad_request(&format!(
                    "resourceVersionMatch: Unsupported value: \"{other}\": supported values: \"Exact\", \"NotOlderThan\""
                )));
            }
        };
        if rv.is_empty() {
            if opts
                .resource_version_match
                .as_deref()
                .is_some_and(|m| !m.is_empty())
            {
                return Err(Status::bad_request(
                    "resourceVersionMatch is forbidden unless resourceVersion is provided",
                ));
            }
            return Ok(0);
        }
        let n = parse_resource_version(rv)?;
        if exact {
            if n == 0 {
                return Err(Status::bad_request(
                    "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                ));
            }
            return Ok(n);
        }
        self.wait_for_revision(n).await?;
        Ok(0)
    }

    /// Waits (up to 3 s, like upstream) until the store has reached `n`.
    pub async fn wait_for_revision(&self, n: Revision) -> Result<(), Status> {
        if n <= self.store.revision() {
            return Ok(());
        }
        let wait = self.store.cache().wait_for(n);
        match tokio::time::timeout(std::time::Duration::from_secs(3), wait).await {
            Ok(()) => Ok(()),
            Err(_) => Err(Status::timeout(
                &format!(
                    "Too large resource version: {n}, current: {}",
                    self.store.revision()
                ),
                1,
            )),
        }
    }

    // === writes ===

    fn validate_meta(&self, res: &Resource, obj: &Value) -> ErrorList {
        let strategy = res.strategy.clone();
        static NO_METADATA: Value = Value::Null;
        let meta = obj.get("metadata").unwrap_or(&NO_METADATA);
        k1s_apimachinery::meta::validate_object_meta(
            meta,
            res.info.namespaced,
            &|name: &str, prefix: bool| strategy.validate_name(name, prefix),
            &Path::new("metadata"),
        )
    }

    /// Upstream's Priority admission plugin for a pod being created: its priority from
    /// its PriorityClass (or the global default class), read from the store's cache.
    fn admit_pod_priority(&self, pod: &mut Value, name: &str) -> Result<(), Status> {
        let snap = self.registry.snapshot();
        let Some(classes) = snap
            .get("scheduling.k8s.io", "v1", "priorityclasses")
            .cloned()
        else {
            return Ok(());
        };
        let needs_default = pod
            .pointer("/spec/priorityClassName")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty);
        let global_default = if needs_default {
            let (items, _, _) =
                self.store
                    .cache()
                    .list(&classes.info.collection_prefix(None), None, 0);
            // Upstream picks the lowest-valued of several global defaults.
            items
                .iter()
                .filter_map(|kv| serde_json::from_slice::<Value>(&kv.value).ok())
                .filter(|pc| pc.get("globalDefault").and_then(Value::as_bool) == Some(true))
                .min_by_key(|pc| pc.get("value").and_then(Value::as_i64).unwrap_or(0))
        } else {
            None
        };
        let lookup = |n: &str| self.get(&classes, None, n).ok();
        crate::kinds::scheduling::priorityclass::admit_pod_priority(pod, lookup, global_default)
            .map_err(|why| Status::forbidden(&GroupResource::new("", "pods"), name, &why))
    }

    /// The RuntimeClass a pod being created names (None: it names none); a class that
    /// does not exist refuses the pod with RuntimeClass admission's 403.
    fn pod_runtime_class(&self, pod: &Value, name: &str) -> Result<Option<Value>, Status> {
        use crate::admission::runtimeclass;
        let Some(class) = runtimeclass::class_name(pod) else {
            return Ok(None);
        };
        let snap = self.registry.snapshot();
        let found = snap
            .get("node.k8s.io", "v1", "runtimeclasses")
            .and_then(|classes| self.get(classes, None, class).ok());
        match found {
            Some(c) => Ok(Some(c)),
            None => Err(Status::forbidden(
                &GroupResource::new("", "pods"),
                name,
                &runtimeclass::not_found(class),
            )),
        }
    }

    /// Upstream's DefaultStorageClass admission for a claim being created: a claim that
    /// names no class (neither `spec.storageClassName` nor the beta annotation) gets the
    /// default StorageClass. An empty class name means "no class" and stays.
    fn admit_default_storage_class(&self, claim: &mut Value) {
        let named = claim
            .pointer("/spec/storageClassName")
            .is_some_and(|v| !v.is_null())
            || claim
                .pointer("/metadata/annotations/volume.beta.kubernetes.io~1storage-class")
                .is_some();
        if named {
            return;
        }
        let chosen = self.default_class(
            ("storage.k8s.io", "v1", "storageclasses"),
            &[
                "storageclass.kubernetes.io~1is-default-class",
                "storageclass.beta.kubernetes.io~1is-default-class",
            ],
        );
        if let Some(name) = chosen
            && let Some(spec) = claim.get_mut("spec").and_then(Value::as_object_mut)
        {
            spec.insert("storageClassName".into(), json!(name));
        }
    }

    /// Upstream's DefaultIngressClass admission for an Ingress being created: one that
    /// names no class (neither `spec.ingressClassName` nor the legacy
    /// `kubernetes.io/ingress.class` annotation) gets the default IngressClass.
    fn admit_default_ingress_class(&self, ingress: &mut Value) {
        let named = ingress
            .pointer("/spec/ingressClassName")
            .is_some_and(|v| !v.is_null())
            || ingress
                .pointer("/metadata/annotations/kubernetes.io~1ingress.class")
                .is_some();
        if named {
            return;
        }
        let chosen = self.default_class(
            ("networking.k8s.io", "v1", "ingressclasses"),
            &["ingressclass.kubernetes.io~1is-default-class"],
        );
        if let Some(name) = chosen
            && let Some(spec) = ingress.get_mut("spec").and_then(Value::as_object_mut)
        {
            spec.insert("ingressClassName".into(), json!(name));
        }
    }

    /// The default class among the cluster-scoped `(group, version, plural)` objects: one
    /// whose annotation (any of `annotations`, JSON-pointer escaped) is `"true"`; of several
    /// the newest wins (ties: the name first in order), as upstream since 1.26.
    fn default_class(
        &self,
        (group, version, plural): (&str, &str, &str),
        annotations: &[&str],
    ) -> Option<String> {
        let snap = self.registry.snapshot();
        let classes = snap.get(group, version, plural).cloned()?;
        let (items, _, _) = self
            .store
            .cache()
            .list(&classes.info.collection_prefix(None), None, 0);
        let is_default = |class: &Value| {
            annotations.iter().any(|a| {
                class
                    .pointer(&format!("/metadata/annotations/{a}"))
                    .and_then(Value::as_str)
                    == Some("true")
            })
        };
        let created = |v: &Value| {
            v.pointer("/metadata/creationTimestamp")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        items
            .iter()
            .filter_map(|kv| serde_json::from_slice::<Value>(&kv.value).ok())
            .filter(is_default)
            .max_by(|a, b| {
                created(a)
                    .cmp(&created(b))
                    .then_with(|| meta::name(b).cmp(meta::name(a)))
            })
            .map(|class| meta::name(&class).to_string())
    }

    /// Upstream's ServiceAccount admission (see `kinds::core::pod_service_account`), unless
    /// switched off for this server.
    async fn admit_pod_service_account(
        &self,
        pod: &mut Value,
        namespace: &str,
        name: &str,
    ) -> Result<(), Status> {
        use crate::kinds::core::pod_service_account as sa;
        if !self.service_account_admission.load(Ordering::Relaxed) {
            return Ok(());
        }
        let forbidden = |why: &str| Status::forbidden(&GroupResource::new("", "pods"), name, why);
        let Some(account_name) = sa::account_to_look_up(pod).map_err(|why| forbidden(&why))? else {
            return Ok(());
        };
        // A missing namespace is reported by the namespace check that follows.
        if self
            .store
            .get(&format!("/registry/namespaces/{namespace}"))
            .is_none()
        {
            return Ok(());
        }
        let key = format!("/registry/serviceaccounts/{namespace}/{account_name}");
        // The serviceaccount controller makes `default` just after its namespace: upstream
        // looks again for a second or so before refusing.
        let attempts = if account_name == sa::DEFAULT_SERVICE_ACCOUNT {
            10
        } else {
            1
        };
        let mut account = None;
        for attempt in 0..attempts {
            if attempt > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(150)).await;
            }
            if let Some(kv) = self.store.get(&key) {
                account = serde_json::from_slice::<Value>(&kv.value).ok();
                break;
            }
        }
        let Some(account) = account else {
            return Err(forbidden(&format!(
                "error looking up service account {namespace}/{account_name}: serviceaccount \"{account_name}\" not found"
            )));
        };
        sa::admit(pod, &account, || k1s_apimachinery::names::generate_name(""))
            .map_err(|why| forbidden(&why))
    }

    /// Switches the StorageObjectInUseProtection admission plugin on or off (in-memory test
    /// servers run without it, since the protection controllers that take the finalizers
    /// off again may not run there).
    pub fn set_storage_protection_admission(&self, on: bool) {
        self.storage_protection_admission
            .store(on, Ordering::Relaxed);
    }

    /// Upstream's StorageObjectInUseProtection admission: a claim being created gets
    /// `kubernetes.io/pvc-protection`, a volume `kubernetes.io/pv-protection`, so neither
    /// goes while in use (the volume protection controllers take them off).
    fn admit_storage_protection(&self, info: &ResourceInfo, obj: &mut Value) {
        if !info.group.is_empty() || !self.storage_protection_admission.load(Ordering::Relaxed) {
            return;
        }
        let finalizer = match info.plural.as_str() {
            "persistentvolumeclaims" => "kubernetes.io/pvc-protection",
            "persistentvolumes" => "kubernetes.io/pv-protection",
            _ => return,
        };
        let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
            return;
        };
        let finalizers = meta.entry("finalizers").or_insert_with(|| json!([]));
        if finalizers.is_null() {
            *finalizers = json!([]);
        }
        if let Some(list) = finalizers.as_array_mut()
            && !list.iter().any(|f| f.as_str() == Some(finalizer))
        {
            list.push(json!(finalizer));
        }
    }

    /// Switches the TaintNodesByCondition admission plugin on or off (in-memory test
    /// servers run without it, since the node lifecycle controller that takes the
    /// not-ready taint off again may not run there).
    pub fn set_node_taint_admission(&self, on: bool) {
        self.node_taint_admission.store(on, Ordering::Relaxed);
    }

    /// Switches the ServiceAccount admission plugin on or off (upstream's
    /// `--disable-admission-plugins=ServiceAccount`; in-memory test servers run without it).
    pub fn set_service_account_admission(&self, on: bool) {
        self.service_account_admission.store(on, Ordering::Relaxed);
    }

    fn invalid(res: &Resource, name: &str, errs: &ErrorList) -> Status {
        Status::invalid(&res.info.group_kind(), name, errs)
    }

    /// Creates an object (already decoded for `res`).
    pub async fn create(
        &self,
        res: &Arc<Resource>,
        namespace: Option<&str>,
        obj: Value,
        ctx: &WriteContext,
        mut warnings: Vec<String>,
    ) -> Result<Written, Status> {
        let storage = self.storage_of(res);
        let info = &res.info;
        let mut obj = self.stored_form(res, obj)?;
        // Namespace from the URL; a different one in the body is refused.
        if info.namespaced {
            let ns = namespace.unwrap_or("");
            match meta::namespace(&obj) {
                "" => meta::set_meta(&mut obj, "namespace", Some(json!(ns))),
                body if body != ns => {
                    return Err(Status::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => {}
            }
        } else {
            meta::set_meta(&mut obj, "namespace", None);
        }
        if meta::name(&obj).is_empty() {
            let base = meta::meta_str(&obj, "generateName").to_string();
            if !base.is_empty() {
                meta::set_meta(
                    &mut obj,
                    "name",
                    Some(json!(k1s_apimachinery::names::generate_name(&base))),
                );
            }
        }
        let has_status = info.has_subresource(Subresource::Status);
        storage.strategy.default(&mut obj);
        // System fields: a create may not choose them. They are set before the strategy
        // prepares the object, which may use the uid (a Job's generated selector).
        {
            let m = meta::metadata_mut(&mut obj);
            for f in [
                "resourceVersion",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "selfLink",
            ] {
                m.remove(f);
            }
            m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
            m.insert("creationTimestamp".into(), json!(meta::now_rfc3339()));
            if storage.strategy.tracks_generation() {
                m.insert("generation".into(), json!(1));
            } else {
                m.remove("generation");
            }
        }
        storage.strategy.prepare_for_create(&mut obj, has_status);
        let name = meta::name(&obj).to_string();
        if info.group.is_empty() && info.plural == "pods" {
            if let Some(ns) = namespace {
                crate::admission::limitranger::default_pod(&self.limit_ranges(ns), &mut obj);
            }
            self.admit_pod_priority(&mut obj, &name)?;
            let class = self.pod_runtime_class(&obj, &name)?;
            crate::admission::runtimeclass::admit(&mut obj, class.as_ref())
                .map_err(|why| Status::forbidden(&GroupResource::new("", "pods"), &name, &why))?;
            if let Some(ns) = namespace {
                self.admit_pod_service_account(&mut obj, ns, &name).await?;
            }
        }
        if info.group.is_empty() && info.plural == "persistentvolumeclaims" {
            self.admit_default_storage_class(&mut obj);
        }
        if info.group == "networking.k8s.io" && info.plural == "ingresses" {
            self.admit_default_ingress_class(&mut obj);
        }
        self.admit_storage_protection(info, &mut obj);
        if info.group == "certificates.k8s.io" && info.plural == "certificatesigningrequests" {
            crate::kinds::certificates::csr::record_requester(&mut obj, &ctx.user);
        }
        let attrs = crate::admission::Attributes {
            info,
            subresource: "",
            operation: crate::admission::Operation::Create,
            namespace: namespace.filter(|_| info.namespaced).unwrap_or(""),
            name: &name,
            old_object: None,
            dry_run: ctx.dry_run,
            user: &ctx.user,
            field_manager: &ctx.field_manager,
        };
        self.admit_node_restriction(&crate::admission::noderestriction::Request {
            group: &info.group,
            resource: &info.plural,
            subresource: "",
            operation: crate::admission::Operation::Create,
            namespace: attrs.namespace,
            name: &name,
            object: Some(&obj),
            old_object: None,
            user: &ctx.user,
        })?;
        // TaintNodesByCondition comes after NodeRestriction in upstream's order, so a
        // kubelet need not send the taint itself.
        if info.group.is_empty()
            && info.plural == "nodes"
            && self.node_taint_admission.load(Ordering::Relaxed)
        {
            crate::admission::nodetaint::admit(&mut obj);
        }
        self.admit_mutating_webhooks(res, &storage, &attrs, &mut obj, &mut warnings)
            .await?;
        let mut errs = self.validate_meta(res, &obj);
        errs.extend(storage.strategy.validate(&obj));
        if !errs.is_empty() {
            return Err(Self::invalid(res, &name, &errs));
        }
        self.admit_namespace(info, namespace).await?;
        let policy = crate::admission::policy::Request {
            info,
            subresource: None,
            operation: "CREATE",
            namespace,
            name: &name,
            object: Some(&obj),
            old_object: None,
            user: &ctx.user,
            dry_run: ctx.dry_run,
        };
        self.admit_validating(res, Some(&attrs), &policy, &obj, &mut warnings)
            .await?;
        let defs = self.registry.snapshot().definitions.clone();
        fill_required(&storage, &mut obj, &defs);
        crate::managed::track_update(&mut obj, None, ctx, info, None, &defs);
        check_storable(&obj)?;
        let reservations = self.reservations_for(info);
        let requested = reservations.as_ref().map(|_| obj.clone());
        storage.strategy.admit_create(&mut obj)?;
        self.check_write(info, namespace, &obj, ctx)?;
        self.admit_quota(info, namespace, &name, &obj, None, ctx.dry_run)
            .await?;
        if ctx.dry_run {
            storage.strategy.release(&obj, None);
            let obj = self.served_form(res, obj)?;
            return Ok(Written {
                object: obj,
                created: true,
                warnings,
            });
        }
        let mut reserved = Vec::new();
        if let (Some(r), Some(requested)) = (&reservations, &requested) {
            match r.reserve(&mut obj, requested, None).await {
                Ok(taken) => reserved = taken,
                Err(status) => {
                    storage.strategy.release(&obj, None);
                    return Err(status);
                }
            }
        }
        let key = info.key(namespace, &name);
        let bytes = encode(&obj)?;
        match self.store.create(&key, bytes).await {
            Ok(kv) => {
                meta::set_meta(
                    &mut obj,
                    "resourceVersion",
                    Some(json!(kv.mod_revision.to_string())),
                );
                let obj = self.served_form(res, obj)?;
                Ok(Written {
                    object: obj,
                    created: true,
                    warnings: std::mem::take(&mut warnings),
                })
            }
            Err(e) => {
                storage.strategy.release(&obj, None);
                if let Some(r) = &reservations {
                    r.unreserve(&reserved, meta::namespace(&obj), &name).await;
                }
                Err(store_error(info, &name, Operation::Create, e))
            }
        }
    }

    /// Upstream's ResourceQuota admission on create: refuses an object that would take a
    /// quota of its namespace over `status.hard` (403 `exceeded quota: …`), and charges
    /// the quotas it falls under (their `status.used`) before it is stored, so
    /// concurrent creates cannot all slip under the same limit. The resourcequota
    /// controller recomputes usage from the objects themselves.
    async fn admit_quota(
        &self,
        info: &ResourceInfo,
        namespace: Option<&str>,
        name: &str,
        obj: &Value,
        old: Option<&Value>,
        dry_run: bool,
    ) -> Result<(), Status> {
        use k1s_apimachinery::quota;
        let Some(ns) = namespace.filter(|_| info.namespaced) else {
            return Ok(());
        };
        let snapshot = self.registry.snapshot();
        let Some(quotas) = snapshot.get("", "v1", "resourcequotas").cloned() else {
            return Ok(());
        };
        let prefix = quotas.info.collection_prefix(Some(ns));
        let (group, resource) = (info.group.as_str(), info.plural.as_str());
        let forbidden = |msg: String| Status::forbidden(&info.group_resource(), name, &msg);
        let mut charged = Vec::new();
        // The quotas that apply come from the watch cache, as upstream's quota admission
        // reads its informer: a consistent list here would cost every write a datastore
        // round trip on etcd. The charge below is decided again on the quota as written
        // (guarded on its revision), so a cache a moment behind cannot over-commit.
        let (listed, _, _) = self.store.cache().list(&prefix, None, 0);
        for kv in listed {
            let Ok(q) = self.decode_stored(&quotas, &kv) else {
                continue;
            };
            if quota::admit(&q, group, resource, obj, old)
                .map_err(forbidden)?
                .is_some()
            {
                charged.push(meta::name(&q).to_string());
            }
        }
        if dry_run {
            return Ok(());
        }
        let ctx = WriteContext {
            field_manager: "kube-apiserver".into(),
            ..WriteContext::default()
        };
        for q in charged {
            // Decided again on the quota as it is when written: a concurrent create that
            // charged it first may leave no room.
            // Boxed: an update may create, which comes back here.
            let write = self.update(
                &quotas,
                Some(ns),
                &q,
                Some(Subresource::Status),
                &ctx,
                |cur, _| {
                    let Some(cur) = cur else {
                        return Err(Status::not_found(&quotas.info.group_resource(), &q));
                    };
                    let mut next = cur.clone();
                    if let Some(used) =
                        quota::admit(cur, group, resource, obj, old).map_err(forbidden)?
                    {
                        next["status"]["used"] = quota::to_json(&used);
                    }
                    Ok(next)
                },
            );
            Box::pin(write).await?;
        }
        Ok(())
    }

    /// Refuses creation in a missing or terminating namespace (upstream's
    /// NamespaceLifecycle admission).
    async fn admit_namespace(
        &self,
        info: &ResourceInfo,
        namespace: Option<&str>,
    ) -> Result<(), Status> {
        let Some(ns) = namespace.filter(|_| info.namespaced) else {
            return Ok(());
        };
        let Some(kv) = self.store.get(&format!("/registry/namespaces/{ns}")) else {
            return Err(Status::not_found(
                &k1s_apimachinery::GroupResource::new("", "namespaces"),
                ns,
            ));
        };
        let obj: Value = serde_json::from_slice(&kv.value).unwrap_or(Value::Null);
        if meta::is_deleting(&obj) {
            let mut s = Status::forbidden(
                &info.group_resource(),
                "",
                &format!(
                    "unable to create new content in namespace {ns} because it is being terminated"
                ),
            );
            if let Some(d) = s.details.as_mut() {
                d.causes.push(k1s_apimachinery::status::StatusCause {
                    reason: "NamespaceTerminating".into(),
                    message: format!("namespace {ns} is being terminated"),
                    field: "metadata.namespace".into(),
                });
            }
            return Err(s);
        }
        Ok(())
    }

    /// Replaces an object (PUT) or a subresource of it. `build` turns the current object
    /// (None when absent) into the desired one; it runs again after a conflict unless the
    /// caller pinned a resourceVersion.
    pub async fn update<F>(
        &self,
        res: &Arc<Resource>,
        namespace: Option<&str>,
        name: &str,
        sub: Option<Subresource>,
        ctx: &WriteContext,
        mut build: F,
    ) -> Result<Written, Status>
    where
        F: FnMut(Option<&Value>, &mut Vec<String>) -> Result<Value, Status>,
    {
        let storage = self.storage_of(res);
        let info = &res.info;
        let has_status = info.has_subresource(Subresource::Status);
        for _attempt in 0..16 {
            let mut warnings = Vec::new();
            let current = self.current(res, namespace, name);
            let desired = build(current.as_ref().map(|(o, _)| o), &mut warnings)?;
            // Names in the body and URL must agree; a body without a name is no
            // exception (upstream's checkName: a PUT of `{}` would otherwise replace the
            // object with an empty one).
            let body_name = meta::name(&desired);
            if body_name != name {
                return Err(Status::bad_request(&format!(
                    "the name of the object ({body_name}) does not match the name on the URL ({name})"
                )));
            }
            if info.namespaced {
                let ns = namespace.unwrap_or("");
                let body_ns = meta::namespace(&desired);
                if !body_ns.is_empty() && body_ns != ns {
                    return Err(Status::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
            }
            let requested_rv = meta::resource_version(&desired).to_string();
            let Some((current_obj, current_rev)) = current else {
                if sub.is_none() && storage.strategy.allow_create_on_update() {
                    let mut obj = desired;
                    meta::set_meta(&mut obj, "name", Some(json!(name)));
                    if !requested_rv.is_empty() {
                        return Err(Status::not_found(&info.group_resource(), name));
                    }
                    return self.create(res, namespace, obj, ctx, warnings).await;
                }
                return Err(Status::not_found(&info.group_resource(), name));
            };
            if !requested_rv.is_empty() {
                let want = parse_resource_version(&requested_rv)
                    .map_err(|_| Status::bad_request("invalid resource version"))?;
                if want != current_rev {
                    return Err(Status::conflict(
                        &info.group_resource(),
                        name,
                        OPTIMISTIC_LOCK_MSG,
                    ));
                }
            } else if !ctx.patch && !storage.strategy.allow_unconditional_update() {
                let errs = vec![FieldError::invalid(
                    &Path::new("metadata").child("resourceVersion"),
                    json!(""),
                    "must be specified for an update",
                )];
                return Err(Self::invalid(res, name, &errs));
            }
            let mut old = self.stored_form(res, current_obj)?;
            // Upstream defaults objects read from storage: one k1s stored before it
            // defaulted (or defaulted differently) is compared, prepared and validated
            // against as if it had been.
            storage.strategy.default(&mut old);
            let mut obj = self.stored_form(res, desired)?;
            meta::set_meta(&mut obj, "name", Some(json!(name)));
            if info.namespaced {
                meta::set_meta(&mut obj, "namespace", Some(json!(namespace.unwrap_or(""))));
            }
            storage.strategy.default(&mut obj);
            match sub {
                // A write through /scale is an update of the parent object.
                None | Some(Subresource::Scale) => storage
                    .strategy
                    .prepare_for_update(&mut obj, &old, has_status),
                Some(Subresource::Status) => prepare_status_update(
                    &mut obj,
                    &old,
                    storage.strategy.status_update_keeps_metadata(),
                ),
                Some(s) if s.is_kind_specific() => storage
                    .strategy
                    .prepare_for_subresource_update(s, &mut obj, &old),
                Some(
                    Subresource::Token
                    | Subresource::Approval
                    | Subresource::EphemeralContainers
                    | Subresource::Resize
                    | Subresource::Eviction
                    | Subresource::Log
                    | Subresource::Exec
                    | Subresource::Attach
                    | Subresource::PortForward,
                ) => {}
                Some(Subresource::Finalize) => prepare_finalize_update(&mut obj, &old),
                // The binding handler builds the whole pod from the stored one.
                Some(Subresource::Binding) => {}
            }
            carry_system_meta(&mut obj, &old);
            // An unconditional update is validated as if it named the current version,
            // like upstream's store does.
            meta::set_meta(
                &mut obj,
                "resourceVersion",
                Some(json!(current_rev.to_string())),
            );
            // Webhooks see the object and its status and finalize subresources; the
            // other subresources carry objects of other kinds upstream.
            let admission_sub = match sub {
                None => Some(""),
                Some(Subresource::Status) => Some("status"),
                Some(Subresource::Finalize) => Some("finalize"),
                Some(_) => None,
            };
            // Only webhooks and pod security read the old object in its served form: the
            // copy is made for them alone.
            let old_served = match admission_sub {
                Some(subresource) if self.admission_reads_old(info, subresource) => {
                    Some(self.served_form(res, old.clone())?)
                }
                _ => None,
            };
            let attrs = admission_sub.map(|subresource| crate::admission::Attributes {
                info,
                subresource,
                operation: crate::admission::Operation::Update,
                namespace: namespace.filter(|_| info.namespaced).unwrap_or(""),
                name,
                old_object: old_served.as_ref(),
                dry_run: ctx.dry_run,
                user: &ctx.user,
                field_manager: &ctx.field_manager,
            });
            self.admit_node_restriction(&crate::admission::noderestriction::Request {
                group: &info.group,
                resource: &info.plural,
                subresource: sub.map(Subresource::as_str).unwrap_or(""),
                operation: crate::admission::Operation::Update,
                namespace: namespace.filter(|_| info.namespaced).unwrap_or(""),
                name,
                object: Some(&obj),
                old_object: Some(&old),
                user: &ctx.user,
            })?;
            if let Some(attrs) = &attrs {
                self.admit_mutating_webhooks(res, &storage, attrs, &mut obj, &mut warnings)
                    .await?;
            }
            let mut errs = k1s_apimachinery::meta::validate_object_meta_update(
                obj.get("metadata").unwrap_or(&Value::Null),
                old.get("metadata").unwrap_or(&Value::Null),
                &Path::new("metadata"),
            );
            if errs.is_empty() {
                errs.extend(self.validate_meta(res, &obj));
            }
            errs.extend(match sub {
                Some(Subresource::Status) => storage.strategy.validate_status_update(&obj, &old),
                Some(s) if s.is_kind_specific() => {
                    storage.strategy.validate_subresource_update(s, &obj, &old)
                }
                // Upstream's BindingREST writes the pod without the pod's update
                // validation (which refuses a changed spec.nodeName).
                Some(Subresource::Binding) => ErrorList::new(),
                _ => storage.strategy.validate_update(&obj, &old),
            });
            if !errs.is_empty() {
                return Err(Self::invalid(res, name, &errs));
            }
            // On `/scale`, policies see the autoscaling/v1 Scale objects, as upstream's
            // scale storage hands admission.
            let scales = match (sub, res.strategy.scale()) {
                (Some(Subresource::Scale), Some(spec)) => Some((
                    crate::handlers::scale::scale_of(&self.served_form(res, obj.clone())?, &spec),
                    crate::handlers::scale::scale_of(&self.served_form(res, old.clone())?, &spec),
                )),
                _ => None,
            };
            let policy = crate::admission::policy::Request {
                info,
                subresource: sub.map(Subresource::as_str),
                operation: "UPDATE",
                namespace,
                name,
                object: Some(scales.as_ref().map_or(&obj, |s| &s.0)),
                old_object: Some(scales.as_ref().map_or(&old, |s| &s.1)),
                user: &ctx.user,
                dry_run: ctx.dry_run,
            };
            self.admit_validating(res, attrs.as_ref(), &policy, &obj, &mut warnings)
                .await?;
            let defs = self.registry.snapshot().definitions.clone();
            fill_required(&storage, &mut obj, &defs);
            // The spec is compared as it will be stored: an apply that sends what is
            // stored (with the empty lists the store leaves out) changes nothing.
            if storage.strategy.tracks_generation() {
                let old_gen = meta::metadata(&old)
                    .and_then(|m| m.get("generation"))
                    .and_then(Value::as_i64)
                    .unwrap_or(1);
                let generation = if meta::spec_part(&obj) != meta::spec_part(&old) {
                    old_gen + 1
                } else {
                    old_gen
                };
                meta::set_meta(&mut obj, "generation", Some(json!(generation)));
            }
            // A binding leaves managedFields alone, as upstream's BindingREST does.
            if sub != Some(Subresource::Binding) {
                crate::managed::track_update(&mut obj, Some(&mut old), ctx, info, sub, &defs);
            }
            check_storable(&obj)?;
            // Finalizers removed from an object that is being deleted may complete it.
            let completes_deletion = meta::is_deleting(&obj)
                && meta::finalizers(&obj).is_empty()
                && !storage.strategy.deletion_blocked(&obj)
                && !self.in_grace_period(&obj);
            if same_content(&obj, &old) {
                // Upstream skips no-op writes: the resourceVersion stays.
                let obj = self.served_form(res, old)?;
                return Ok(Written {
                    object: obj,
                    created: false,
                    warnings,
                });
            }
            let reservations = self.reservations_for(info);
            let requested = reservations.as_ref().map(|_| obj.clone());
            storage.strategy.admit_update(&mut obj, &old)?;
            if sub.is_none() {
                self.check_write(info, namespace, &obj, ctx)?;
            }
            // Quota admission on update: upstream's evaluators that handle updates
            // (services changing type, claims growing) are charged what they add.
            if sub.is_none()
                && info.group.is_empty()
                && matches!(info.plural.as_str(), "services" | "persistentvolumeclaims")
            {
                Box::pin(self.admit_quota(info, namespace, name, &obj, Some(&old), ctx.dry_run))
                    .await?;
            }
            if ctx.dry_run {
                storage.strategy.release(&obj, Some(&old));
                let obj = self.served_form(res, obj)?;
                return Ok(Written {
                    object: obj,
                    created: false,
                    warnings,
                });
            }
            let mut reserved = Vec::new();
            if let (Some(r), Some(requested)) = (&reservations, &requested) {
                match r.reserve(&mut obj, requested, Some(&old)).await {
                    Ok(taken) => reserved = taken,
                    Err(status) => {
                        storage.strategy.release(&obj, Some(&old));
                        return Err(status);
                    }
                }
            }
            let key = info.key(namespace, name);
            let result = if completes_deletion {
                self.store.delete(&key, encode(&obj)?, current_rev).await
            } else {
                self.store.update(&key, encode(&obj)?, current_rev).await
            };
            match result {
                Ok(kv) => {
                    if completes_deletion {
                        storage.strategy.after_delete(&obj);
                    }
                    if let Some(r) = &reservations {
                        r.release(&old, (!completes_deletion).then_some(&obj)).await;
                    }
                    meta::set_meta(
                        &mut obj,
                        "resourceVersion",
                        Some(json!(kv.mod_revision.to_string())),
                    );
                    let obj = self.served_form(res, obj)?;
                    return Ok(Written {
                        object: obj,
                        created: false,
                        warnings,
                    });
                }
                Err(StoreError::Conflict { .. }) if requested_rv.is_empty() => {
                    storage.strategy.release(&obj, Some(&old));
                    if let Some(r) = &reservations {
                        r.unreserve(&reserved, meta::namespace(&obj), name).await;
                    }
                    continue;
                }
                Err(e) => {
                    storage.strategy.release(&obj, Some(&old));
                    if let Some(r) = &reservations {
                        r.unreserve(&reserved, meta::namespace(&obj), name).await;
                    }
                    return Err(store_error(info, name, Operation::Update, e));
                }
            }
        }
        Err(Status::conflict(
            &info.group_resource(),
            name,
            OPTIMISTIC_LOCK_MSG,
        ))
    }

    /// The admission chain of a delete: the mutating webhooks, ValidatingAdmissionPolicy,
    /// then the validating webhooks; the object is the one being deleted (`oldObject`),
    /// the options the request's DeleteOptions.
    async fn admit_delete_webhooks(
        &self,
        res: &Resource,
        namespace: Option<&str>,
        name: &str,
        current: &Value,
        opts: &DeleteOptions,
        ctx: &WriteContext,
    ) -> Result<(), Status> {
        use crate::admission::webhook;
        let info = &res.info;
        let mutating = webhook::configured(self, webhook::Kind::Mutating);
        let validating = webhook::configured(self, webhook::Kind::Validating);
        let stored = self.stored_form(res, current.clone())?;
        let policy = crate::admission::policy::Request {
            info,
            subresource: None,
            operation: "DELETE",
            namespace,
            name,
            object: None,
            old_object: Some(&stored),
            user: &ctx.user,
            dry_run: ctx.dry_run,
        };
        if !mutating && !validating {
            // A delete has no way to send warnings: only Deny bindings have an effect.
            Box::pin(crate::admission::policy::admit(self, &policy)).await?;
            return Ok(());
        }
        let mut options = serde_json::Map::new();
        if let Some(g) = opts.grace_period_seconds {
            options.insert("gracePeriodSeconds".into(), json!(g));
        }
        if let Some(p) = &opts.propagation_policy {
            options.insert("propagationPolicy".into(), json!(p));
        }
        if let Some(o) = opts.orphan_dependents {
            options.insert("orphanDependents".into(), json!(o));
        }
        let mut pre = serde_json::Map::new();
        if let Some(u) = &opts.precondition_uid {
            pre.insert("uid".into(), json!(u));
        }
        if let Some(rv) = &opts.precondition_resource_version {
            pre.insert("resourceVersion".into(), json!(rv));
        }
        if !pre.is_empty() {
            options.insert("preconditions".into(), Value::Object(pre));
        }
        let options = Value::Object(options);
        let attrs = crate::admission::Attributes {
            info,
            subresource: "",
            operation: crate::admission::Operation::Delete,
            namespace: namespace.filter(|_| info.namespaced).unwrap_or(""),
            name,
            old_object: Some(current),
            dry_run: ctx.dry_run,
            user: &ctx.user,
            field_manager: "",
        };
        if mutating {
            let keep = |v: Value| Ok(v);
            webhook::mutate(self, &attrs, None, Some(&options), &keep).await?;
        }
        // ValidatingAdmissionPolicy runs before the validating webhooks, as upstream
        // orders its plugins.
        Box::pin(crate::admission::policy::admit(self, &policy)).await?;
        if validating {
            webhook::validate(self, &attrs, None, Some(&options)).await?;
        }
        Ok(())
    }

    fn in_grace_period(&self, obj: &Value) -> bool {
        meta::metadata(obj)
            .and_then(|m| m.get("deletionGracePeriodSeconds"))
            .and_then(Value::as_i64)
            .is_some_and(|g| g > 0)
    }

    /// Deletes an object: graceful deletion, finalizers and propagation policy first.
    pub async fn delete(
        &self,
        res: &Arc<Resource>,
        namespace: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
        ctx: &WriteContext,
    ) -> Result<Deleted, Status> {
        let storage = self.storage_of(res);
        let info = &res.info;
        let key = info.key(namespace, name);
        let mut admitted = false;
        for _attempt in 0..16 {
            let Some((current, rev)) = self.current(res, namespace, name) else {
                return Err(Status::not_found(&info.group_resource(), name));
            };
            if let Some(uid) = opts.precondition_uid.as_deref()
                && uid != meta::uid(&current)
            {
                return Err(Status::conflict(
                    &info.group_resource(),
                    name,
                    &uid_precondition_failed(uid, meta::uid(&current)),
                ));
            }
            if let Some(want) = opts.precondition_resource_version.as_deref()
                && want != meta::resource_version(&current)
            {
                return Err(Status::conflict(
                    &info.group_resource(),
                    name,
                    &format!(
                        "Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {}",
                        meta::resource_version(&current)
                    ),
                ));
            }
            if !admitted {
                let stored = self.stored_form(res, current.clone())?;
                self.admit_node_restriction(&crate::admission::noderestriction::Request {
                    group: &info.group,
                    resource: &info.plural,
                    subresource: "",
                    operation: crate::admission::Operation::Delete,
                    namespace: namespace.filter(|_| info.namespaced).unwrap_or(""),
                    name,
                    object: None,
                    old_object: Some(&stored),
                    user: &ctx.user,
                })?;
                self.admit_delete_webhooks(res, namespace, name, &current, opts, ctx)
                    .await?;
                admitted = true;
            }
            let mut obj = self.stored_form(res, current)?;
            storage.strategy.admit_delete(&obj)?;
            let deleting = meta::is_deleting(&obj);
            if !deleting {
                // May add finalizers of its own (CRDs: custom object clean-up).
                storage.strategy.prepare_for_delete(&mut obj);
            }
            let mut finalizers = meta::finalizers(&obj);
            let policy = match (opts.propagation_policy.as_deref(), opts.orphan_dependents) {
                (Some(p), _) => Some(p.to_string()),
                (None, Some(true)) => Some("Orphan".into()),
                (None, Some(false)) => Some("Background".into()),
                (None, None) => None,
            };
            let mut changed = false;
            match policy.as_deref() {
                Some("Orphan") if !finalizers.iter().any(|f| f == FINALIZER_ORPHAN) => {
                    finalizers.retain(|f| f != FINALIZER_FOREGROUND);
                    finalizers.push(FINALIZER_ORPHAN.into());
                    changed = true;
                }
                Some("Foreground") if !finalizers.iter().any(|f| f == FINALIZER_FOREGROUND) => {
                    finalizers.retain(|f| f != FINALIZER_ORPHAN);
                    finalizers.push(FINALIZER_FOREGROUND.into());
                    changed = true;
                }
                Some("Background")
                    if finalizers
                        .iter()
                        .any(|f| f == FINALIZER_ORPHAN || f == FINALIZER_FOREGROUND)
                        && !deleting =>
                {
                    finalizers.retain(|f| f != FINALIZER_ORPHAN && f != FINALIZER_FOREGROUND);
                    changed = true;
                }
                Some("Orphan" | "Foreground" | "Background") | None => {}
                Some(other) => {
                    let errs = vec![FieldError::not_supported(
                        &Path::new("propagationPolicy"),
                        json!(other),
                        &["Foreground", "Background", "Orphan", "nil"],
                    )];
                    return Err(Status::invalid(
                        &k1s_apimachinery::GroupKind::new("", "DeleteOptions"),
                        "",
                        &errs,
                    ));
                }
            }
            let grace = storage
                .strategy
                .graceful_delete(&obj, opts.grace_period_seconds);
            let blocked = storage.strategy.deletion_blocked(&obj);
            let needs_wait = blocked || !finalizers.is_empty() || grace.is_some_and(|g| g > 0);
            if needs_wait {
                let m = meta::metadata_mut(&mut obj);
                if changed {
                    m.insert("finalizers".into(), json!(finalizers));
                }
                let now = jiff::Timestamp::now();
                let g = grace.unwrap_or(0);
                let existing_grace = m.get("deletionGracePeriodSeconds").and_then(Value::as_i64);
                let shorten = existing_grace.is_some_and(|e| g < e);
                if !deleting || shorten || changed {
                    if !deleting || shorten {
                        // Any int64 is a valid grace period; past the last representable
                        // time the deadline is that time (Go's arithmetic would wrap).
                        let when = now
                            .checked_add(jiff::SignedDuration::from_secs(g))
                            .unwrap_or(if g < 0 {
                                jiff::Timestamp::MIN
                            } else {
                                jiff::Timestamp::MAX
                            });
                        m.insert("deletionTimestamp".into(), json!(meta::format_time(when)));
                        m.insert("deletionGracePeriodSeconds".into(), json!(g));
                    }
                    if ctx.dry_run {
                        return Ok(Deleted::Pending(self.served_form(res, obj)?));
                    }
                    crate::managed::touch(&mut obj);
                    match self.store.update(&key, encode(&obj)?, rev).await {
                        Ok(kv) => {
                            meta::set_meta(
                                &mut obj,
                                "resourceVersion",
                                Some(json!(kv.mod_revision.to_string())),
                            );
                            return Ok(Deleted::Pending(self.served_form(res, obj)?));
                        }
                        Err(StoreError::Conflict { .. }) => continue,
                        Err(e) => return Err(store_error(info, name, Operation::Delete, e)),
                    }
                }
                if blocked
                    || !finalizers.is_empty()
                    || self.in_grace_period(&obj) && grace.is_some_and(|g| g > 0)
                {
                    // Already deleting and nothing to shorten: report the pending object.
                    return Ok(Deleted::Pending(self.served_form(res, obj)?));
                }
            }
            if ctx.dry_run {
                return Ok(Deleted::Gone(self.served_form(res, obj)?));
            }
            match self.store.delete(&key, encode(&obj)?, rev).await {
                Ok(kv) => {
                    storage.strategy.after_delete(&obj);
                    if let Some(r) = self.reservations_for(info) {
                        r.release(&obj, None).await;
                    }
                    meta::set_meta(
                        &mut obj,
                        "resourceVersion",
                        Some(json!(kv.mod_revision.to_string())),
                    );
                    return Ok(Deleted::Gone(self.served_form(res, obj)?));
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(StoreError::NotFound { .. }) => {
                    return Err(Status::not_found(&info.group_resource(), name));
                }
                Err(e) => return Err(store_error(info, name, Operation::Delete, e)),
            }
        }
        Err(Status::conflict(
            &info.group_resource(),
            name,
            OPTIMISTIC_LOCK_MSG,
        ))
    }
}

/// Upstream's message when a continue token's revision was compacted.
pub const CONTINUE_EXPIRED: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

/// Why a strategy refused to decode an object.
#[derive(Debug)]
pub enum DecodeFailure {
    /// A type error in Go's words (400 "cannot be handled as").
    Type(String),
    /// A complete Status (CRD schema validation: 422).
    Status(Box<Status>),
}

impl From<decode::TypeError> for DecodeFailure {
    fn from(e: decode::TypeError) -> Self {
        DecodeFailure::Type(e.message)
    }
}

/// Parses a resourceVersion parameter or field.
pub fn parse_resource_version(rv: &str) -> Result<Revision, Status> {
    rv.parse::<Revision>()
        .ok()
        .filter(|r| *r >= 0)
        .ok_or_else(|| Status::bad_request(&format!("invalid resource version \"{rv}\"")))
}

fn set_type_meta(obj: &mut Value, info: &ResourceInfo) {
    if let Some(o) = obj.as_object_mut() {
        o.insert("apiVersion".into(), json!(info.api_version()));
        o.insert("kind".into(), json!(info.kind));
    }
    if info.custom {
        // Upstream writes custom objects from unstructured maps, whose keys Go's
        // encoder sorts at every level.
        sort_keys(obj);
    } else {
        go_field_order(obj);
    }
}

/// ObjectMeta's fields in the order of the Go struct, which upstream's encoder follows.
pub(super) const OBJECT_META_ORDER: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// Where `resourceVersion` stands in [`OBJECT_META_ORDER`]: the keys before it are those
/// a stored object's version is put after (here and in `served_json`).
pub(super) const VERSION_INDEX: usize = 5;

/// Sets `metadata.resourceVersion` where ObjectMeta's Go order has it, after the keys
/// that come before it: read back from the store (which keeps that order) the object is
/// then in the served order already, and [`go_field_order`] has nothing to move.
fn set_version_in_place(obj: &mut Value, revision: Revision) {
    let m = meta::metadata_mut(obj);
    let version = Value::String(revision.to_string());
    if let Some(v) = m.get_mut("resourceVersion") {
        *v = version;
        return;
    }
    let before = &OBJECT_META_ORDER[..VERSION_INDEX];
    let at = m
        .keys()
        .position(|k| !before.contains(&k.as_str()))
        .unwrap_or(m.len());
    m.shift_insert(at, "resourceVersion".into(), version);
}

/// Moves `first` keys (those present) to the front of `map`, in that order.
fn lead_with(map: &mut serde_json::Map<String, Value>, first: &[&str]) {
    // Objects read back from the store are in this order already: checking is cheaper
    // than rebuilding the map.
    if leads_with(map, first) {
        return;
    }
    let mut rest = std::mem::take(map);
    for k in first {
        if let Some(v) = rest.shift_remove(*k) {
            map.insert((*k).to_string(), v);
        }
    }
    map.extend(rest);
}

/// Whether the keys of `first` that `map` has are its first keys, in `first`'s order.
fn leads_with(map: &serde_json::Map<String, Value>, first: &[&str]) -> bool {
    let mut keys = map.keys();
    first
        .iter()
        .filter(|k| map.contains_key(**k))
        .all(|k| keys.next().is_some_and(|key| key == k))
}

/// A built-in object in the field order of its Go struct as far as every kind shares
/// it: `kind`, `apiVersion` (TypeMeta), `metadata` in ObjectMeta's order, then the
/// kind's own fields (`spec` before `status`).
pub(crate) fn go_field_order(obj: &mut Value) {
    let Some(o) = obj.as_object_mut() else {
        return;
    };
    lead_with(o, &["kind", "apiVersion", "metadata"]);
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        lead_with(m, OBJECT_META_ORDER);
    }
    if o.contains_key("spec")
        && let Some(status) = o.shift_remove("status")
    {
        // Every kind with both declares spec first.
        let spec = o.keys().position(|k| k == "spec").unwrap_or(0);
        o.shift_insert(spec + 1, "status".into(), status);
    }
}

/// Sorts the keys of every object within `v`.
fn sort_keys(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.sort_keys();
            m.values_mut().for_each(sort_keys);
        }
        Value::Array(items) => items.iter_mut().for_each(sort_keys),
        _ => {}
    }
}

fn check_type_meta(obj: &Value, info: &ResourceInfo) -> Result<(), Status> {
    if let Some(av) = obj.get("apiVersion").and_then(Value::as_str)
        && !av.is_empty()
        && av != info.api_version()
    {
        return Err(Status::bad_request(&format!(
            "the API version in the data ({av}) does not match the expected API version ({})",
            info.api_version()
        )));
    }
    if let Some(kind) = obj.get("kind").and_then(Value::as_str)
        && !kind.is_empty()
        && kind != info.kind
    {
        return Err(Status::bad_request(&format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            info.kind
        )));
    }
    Ok(())
}

/// A status update changes `.status` only: everything else comes from the old object
/// (upstream's status strategies and `ResetObjectMetaForStatus`).
fn prepare_status_update(obj: &mut Value, old: &Value, keep_metadata: bool) {
    // What is kept of the request is taken out of it, not copied: it is replaced by `old`.
    let status = obj.get_mut("status").map(Value::take);
    let rv = meta::resource_version(obj).to_string();
    let managed = obj
        .get_mut("metadata")
        .and_then(|m| m.get_mut("managedFields"))
        .map(Value::take);
    // System fields of the kept metadata are carried over from `old` afterwards.
    let kept_meta = keep_metadata
        .then(|| obj.get_mut("metadata").map(Value::take))
        .flatten();
    *obj = old.clone();
    if let (Some(m), Some(o)) = (kept_meta, obj.as_object_mut()) {
        o.insert("metadata".into(), m);
    }
    if let Some(o) = obj.as_object_mut() {
        match status {
            Some(s) => {
                o.insert("status".into(), s);
            }
            None => {
                o.remove("status");
            }
        }
    }
    meta::set_meta(obj, "resourceVersion", Some(json!(rv)));
    if let Some(m) = managed {
        meta::set_meta(obj, "managedFields", Some(m));
    }
}

/// A finalize update changes `spec.finalizers` only.
fn prepare_finalize_update(obj: &mut Value, old: &Value) {
    let finalizers = obj.pointer("/spec/finalizers").cloned();
    let rv = meta::resource_version(obj).to_string();
    *obj = old.clone();
    match finalizers {
        Some(f) => obj["spec"]["finalizers"] = f,
        None => {
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                spec.remove("finalizers");
            }
        }
    }
    meta::set_meta(obj, "resourceVersion", Some(json!(rv)));
}

/// Fields an update may not change are taken from the old object (upstream's
/// `BeforeUpdate`): uid when absent, creationTimestamp, deletion fields, generation.
fn carry_system_meta(obj: &mut Value, old: &Value) {
    let none = serde_json::Map::new();
    let old_meta = meta::metadata(old).unwrap_or(&none);
    let m = meta::metadata_mut(obj);
    if m.get("uid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
        && let Some(uid) = old_meta.get("uid")
    {
        m.insert("uid".into(), uid.clone());
    }
    for f in [
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ] {
        match old_meta.get(f) {
            Some(v) => {
                m.insert(f.into(), v.clone());
            }
            None => {
                m.remove(f);
            }
        }
    }
    m.remove("selfLink");
}

/// Whether two versions of an object would store the same content (ignoring the
/// resourceVersion and managed-field timestamps). Compared in place: key order does not
/// count (maps compare as maps), and nothing is copied.
fn same_content(a: &Value, b: &Value) -> bool {
    let (Value::Object(a), Value::Object(b)) = (a, b) else {
        return a == b;
    };
    a.len() == b.len()
        && a.iter().all(|(k, v)| {
            b.get(k).is_some_and(|w| match (k.as_str(), v, w) {
                ("metadata", Value::Object(m), Value::Object(n)) => same_metadata(m, n),
                _ => v == w,
            })
        })
}

/// [`same_content`] of two metadata maps: `resourceVersion` is left out, and the
/// managedFields entries are compared without their `time`.
fn same_metadata(a: &serde_json::Map<String, Value>, b: &serde_json::Map<String, Value>) -> bool {
    const RV: &str = "resourceVersion";
    let counted = |m: &serde_json::Map<String, Value>| m.len() - usize::from(m.contains_key(RV));
    counted(a) == counted(b)
        && a.iter().filter(|(k, _)| k.as_str() != RV).all(|(k, v)| {
            b.get(k).is_some_and(|w| match (k.as_str(), v, w) {
                ("managedFields", Value::Array(x), Value::Array(y)) => {
                    x.len() == y.len()
                        && x.iter().zip(y).all(|pair| match pair {
                            (Value::Object(e), Value::Object(f)) => same_except(e, f, "time"),
                            (e, f) => e == f,
                        })
                }
                _ => v == w,
            })
        })
}

/// Whether two maps are equal but for `skipped`.
fn same_except(
    a: &serde_json::Map<String, Value>,
    b: &serde_json::Map<String, Value>,
    skipped: &str,
) -> bool {
    let counted =
        |m: &serde_json::Map<String, Value>| m.len() - usize::from(m.contains_key(skipped));
    counted(a) == counted(b)
        && a.iter()
            .filter(|(k, _)| k.as_str() != skipped)
            .all(|(k, v)| b.get(k) == Some(v))
}

/// Gives an object of `storage`'s kind the shape upstream stores (see
/// [`decode::fill_required`]). A custom resource is stored as sent but for its metadata,
/// which upstream round-trips through the typed ObjectMeta.
fn fill_required(storage: &Resource, obj: &mut Value, defs: &crate::schema::model::Definitions) {
    if storage.info.custom {
        if let Some(meta) = obj.get_mut("metadata") {
            let schema =
                crate::schema::model::Schema::reference(crate::schema::builtin::names::OBJECT_META);
            decode::fill_required(meta, &schema, defs);
        }
        return;
    }
    let schema = crate::schema::model::Schema::reference(storage.info.definition.clone());
    decode::fill_required(obj, &schema, defs);
}

/// Refuses an object nested deeper than stored objects are read back (serde_json's
/// limit). A JSON body cannot exceed it, but a protobuf body can: its embedded raw JSON
/// may be as deep as a whole JSON body, below the object's own levels. Once stored, such
/// an object could be neither read nor deleted, and every list of its collection failed.
fn check_storable(obj: &Value) -> Result<(), Status> {
    let depth = decode::nesting_depth(obj);
    if depth > decode::MAX_NESTING_DEPTH {
        return Err(Status::bad_request(&format!(
            "object nests {depth} levels deep, more than the {} a stored object may",
            decode::MAX_NESTING_DEPTH
        )));
    }
    Ok(())
}

/// Serializes an object for the store (without its resourceVersion, which is the
/// revision and set on read).
fn encode(obj: &Value) -> Result<Bytes, Status> {
    let bytes = match obj {
        Value::Object(o) if o.get("metadata").is_some_and(Value::is_object) => {
            serde_json::to_vec(&StoredForm(o))
        }
        // No metadata map to leave the version out of: the store gets one made, as
        // `set_meta` makes it.
        _ => {
            let mut obj = obj.clone();
            meta::set_meta(&mut obj, "resourceVersion", None);
            serde_json::to_vec(&obj)
        }
    };
    // The store keeps these bytes for the object's life (the watch cache holds every
    // live object and a window of old ones): a doubling buffer's slack would be a third of
    // the cache.
    bytes
        .map(crate::handlers::watch_memo::fitted)
        .map_err(|e| Status::internal_error(&format!("cannot encode object: {e}")))
}

/// An object serialized without `metadata.resourceVersion` and without being copied, in
/// the order [`go_field_order`] serves it in: kind, apiVersion, metadata (ObjectMeta's
/// keys first, in their Go order), then the rest with status right after spec. The
/// served JSON is then the stored bytes with the version put back (`served_json`).
struct StoredForm<'a>(&'a serde_json::Map<String, Value>);

impl serde::Serialize for StoredForm<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        const LEAD: [&str; 3] = ["kind", "apiVersion", "metadata"];
        let o = self.0;
        let mut map = s.serialize_map(Some(o.len()))?;
        let mut entry = |k: &str, v: &Value| match v {
            Value::Object(m) if k == "metadata" => map.serialize_entry(k, &WithoutVersion(m)),
            _ => map.serialize_entry(k, v),
        };
        for k in LEAD {
            if let Some(v) = o.get(k) {
                entry(k, v)?;
            }
        }
        let status = o.get("status").filter(|_| o.contains_key("spec"));
        for (k, v) in o {
            if LEAD.contains(&k.as_str()) || (status.is_some() && k == "status") {
                continue;
            }
            entry(k, v)?;
            if k == "spec"
                && let Some(status) = status
            {
                entry("status", status)?;
            }
        }
        map.end()
    }
}

/// A metadata map less its `resourceVersion`, ObjectMeta's keys first in their Go order.
struct WithoutVersion<'a>(&'a serde_json::Map<String, Value>);

impl serde::Serialize for WithoutVersion<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let m = self.0;
        let mut map = s.serialize_map(None)?;
        for k in OBJECT_META_ORDER {
            if *k != "resourceVersion"
                && let Some(v) = m.get(*k)
            {
                map.serialize_entry(k, v)?;
            }
        }
        for (k, v) in m {
            if !OBJECT_META_ORDER.contains(&k.as_str()) {
                map.serialize_entry(k, v)?;
            }
        }
        map.end()
    }
}

impl crate::admission::noderestriction::Lookup for GenericStore {
    fn pod(&self, namespace: &str, name: &str) -> Option<Value> {
        self.core_object("pods", Some(namespace), name)
    }

    fn node(&self, name: &str) -> Option<Value> {
        self.core_object("nodes", None, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_reject_garbage() {
        let t = encode_continue(42, "default/web-1");
        assert_eq!(
            decode_continue(&t).unwrap(),
            (42, "default/web-1".to_string())
        );
        assert!(decode_continue("not-a-token").is_err());
    }

    #[test]
    fn status_update_keeps_spec_and_metadata_of_old() {
        let old = json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "spec": {"r": 1}, "status": {"s": 1}});
        let mut new = json!({"metadata": {"name": "a", "labels": {"x": "2"}, "resourceVersion": "5"}, "spec": {"r": 9}, "status": {"s": 2}});
        prepare_status_update(&mut new, &old, false);
        assert_eq!(new["spec"], json!({"r": 1}));
        assert_eq!(new["status"], json!({"s": 2}));
        assert_eq!(new["metadata"]["labels"], json!({"x": "1"}));
    }

    #[tokio::test]
    async fn objects_stored_before_their_defaults_are_updated_as_if_defaulted() {
        // A StorageClass stored without the reclaimPolicy and volumeBindingMode that
        // defaulting adds (as k1s stored them before it defaulted the kind): upstream
        // defaults what it reads from storage, so adding a label is no change of the
        // immutable fields.
        let t = crate::test_util::TestApiServer::new().await;
        let api = t.api();
        let uri = "/apis/storage.k8s.io/v1/storageclasses";
        let created = api
            .create(
                uri,
                json!({"metadata": {"name": "old"}, "provisioner": "rancher.io/local-path"}),
            )
            .await;
        assert_eq!(created["reclaimPolicy"], json!("Delete"));
        let store = t.server.generic.store();
        let key = "/registry/storage.k8s.io/storageclasses/old";
        let Some(kv) = store.get(key) else {
            panic!("{key} is not stored");
        };
        let mut undefaulted: Value = serde_json::from_slice(&kv.value).unwrap_or_default();
        let fields = undefaulted
            .as_object_mut()
            .map(|o| (o.remove("reclaimPolicy"), o.remove("volumeBindingMode")));
        assert!(matches!(fields, Some((Some(_), Some(_)))), "{undefaulted}");
        if let Err(e) = store
            .update(key, Bytes::from(undefaulted.to_string()), kv.mod_revision)
            .await
        {
            panic!("rewriting {key}: {e}");
        }
        let (code, mut current) = api.call("GET", &format!("{uri}/old"), &Value::Null).await;
        assert_eq!(code, 200, "{current}");
        assert_eq!(current.get("reclaimPolicy"), None);
        current["metadata"]["labels"] = json!({"a": "b"});
        let (code, body) = api.call("PUT", &format!("{uri}/old"), &current).await;
        assert_eq!(code, 200, "{body}");
        assert_eq!(body["reclaimPolicy"], json!("Delete"));
        assert_eq!(body["metadata"]["labels"], json!({"a": "b"}));
    }

    /// What a read serves of `obj` stored at revision 7, decoded the long way: the
    /// stored bytes parsed, the version set, the type and Go's field order applied.
    fn served_by_decoding(stored: &[u8], kind: &str, api_version: &str) -> Vec<u8> {
        let mut obj: Value = serde_json::from_slice(stored).unwrap_or_default();
        meta::set_meta(&mut obj, "resourceVersion", Some(json!("7")));
        if let Some(o) = obj.as_object_mut() {
            o.insert("apiVersion".into(), json!(api_version));
            o.insert("kind".into(), json!(kind));
        }
        go_field_order(&mut obj);
        serde_json::to_vec(&obj).unwrap_or_default()
    }

    /// Objects as the registry hands them to `encode`: keys in any order, the version
    /// anywhere or absent, values of every JSON type, strings with brackets and escapes.
    fn objects_to_store() -> Vec<Value> {
        vec![
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "a", "resourceVersion": "7", "uid": "u",
                                "labels": {"x": "y"}, "managedFields": [{"manager": "m"}]},
                   "data": {"k": "v"}}),
            json!({"kind": "Pod", "apiVersion": "v1",
                   "status": {"phase": "Running", "conditions": [{"type": "Ready"}]},
                   "metadata": {"creationTimestamp": "2026-01-01T00:00:00Z", "uid": "u",
                                "zz-unknown": 1, "namespace": "d", "name": "p",
                                "annotations": {"a": "}{\"]["}, "resourceVersion": "3"},
                   "spec": {"containers": [{"name": "c", "args": ["\\", "\"", "{[", 1.5, -2, true, null]}]},
                   "other": [[], {}, [{}], "x"]}),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"resourceVersion": "7"}}),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {}}),
            json!({"metadata": {"uid": "u", "name": "a"}, "apiVersion": "v1", "kind": "Pod"}),
            json!({"metadata": {"generation": 2, "name": "a"}, "kind": "Pod", "apiVersion": "v1", "spec": {}}),
            json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "ünï\u{1}", "x": [], "y": {}}, "status": {}}),
        ]
    }

    #[test]
    fn encode_stores_the_served_form_less_the_version() {
        for obj in objects_to_store() {
            let stored = encode(&obj).map(|b| b.to_vec()).unwrap_or_default();
            let mut served: Value = serde_json::from_slice(&stored).unwrap_or_default();
            assert_eq!(
                meta::get_path(&served, &["metadata", "resourceVersion"]),
                None
            );
            let mut expected = obj.clone();
            meta::set_meta(&mut expected, "resourceVersion", None);
            assert!(same_content(&served, &expected), "{obj}");
            // Already in Go's order: ordering it changes nothing.
            let before = serde_json::to_vec(&served).unwrap_or_default();
            go_field_order(&mut served);
            assert_eq!(
                String::from_utf8_lossy(&serde_json::to_vec(&served).unwrap_or_default()),
                String::from_utf8_lossy(&before),
                "{obj}"
            );
        }
    }

    #[test]
    fn stored_bytes_spliced_are_what_decoding_serves() {
        use super::super::served_json;
        for obj in objects_to_store() {
            let stored = encode(&obj).map(|b| b.to_vec()).unwrap_or_default();
            let spliced = served_json::object(&stored, "Pod", "v1", 7);
            let decoded = served_by_decoding(&stored, "Pod", "v1");
            // ConfigMap bytes are not a Pod's: refused, not served as another kind.
            if obj["kind"] == json!("Pod") {
                assert_eq!(
                    spliced.as_deref().map(String::from_utf8_lossy),
                    Some(String::from_utf8_lossy(&decoded)),
                    "{obj}"
                );
                let mut served: Value = serde_json::from_slice(&decoded).unwrap_or_default();
                let meta = served["metadata"].take();
                let partial = served_json::partial_metadata(&stored, "Pod", "v1", 7);
                let expected = serde_json::to_vec(&crate::registry::table::partial_metadata(
                    &json!({"metadata": meta}),
                ))
                .unwrap_or_default();
                assert_eq!(
                    partial.as_deref().map(String::from_utf8_lossy),
                    Some(String::from_utf8_lossy(&expected)),
                    "{obj}"
                );
            } else {
                assert_eq!(spliced, None, "{obj}");
            }
        }
    }

    #[test]
    fn version_index_names_the_version() {
        assert_eq!(OBJECT_META_ORDER[VERSION_INDEX], "resourceVersion");
    }

    #[tokio::test]
    async fn objects_written_through_the_api_are_served_spliced() {
        // A pod through the writes a workload makes: create (as a ReplicaSet would,
        // with a generated name), binding, status patch, label update; each time the
        // stored bytes splice into exactly what a GET (decoding them) serves.
        let t = crate::test_util::TestApiServer::new().await;
        let api = t.api();
        let pods = "/api/v1/namespaces/default/pods";
        let created = api
            .create(
                pods,
                json!({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"generateName": "web-", "labels": {"app": "web"}},
                       "spec": {"containers": [{"name": "c", "image": "nginx"}]}}),
            )
            .await;
        let name = created["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let pod = format!("{pods}/{name}");
        let binding = json!({"apiVersion": "v1", "kind": "Binding",
                             "metadata": {"name": name}, "target": {"kind": "Node", "name": "n1"}});
        let status = json!({"status": {"phase": "Running",
                            "conditions": [{"type": "Ready", "status": "True"}]}});
        let writes = [
            (
                "POST",
                format!("{pod}/binding"),
                binding,
                "application/json",
            ),
            (
                "PATCH",
                format!("{pod}/status"),
                status,
                "application/merge-patch+json",
            ),
            (
                "PATCH",
                pod.clone(),
                json!({"metadata": {"labels": {"x": "y"}}}),
                "application/strategic-merge-patch+json",
            ),
        ];
        let res = t
            .server
            .generic
            .registry()
            .snapshot()
            .get("", "v1", "pods")
            .cloned();
        let Some(res) = res else {
            panic!("pods are not served");
        };
        let key = format!("/registry/pods/default/{name}");
        for (i, (method, uri, body, ty)) in std::iter::once(None)
            .chain(writes.iter().map(Some))
            .enumerate()
            .map(|(i, w)| {
                (
                    i,
                    w.cloned().unwrap_or(("GET", pod.clone(), Value::Null, "")),
                )
            })
        {
            if i > 0 {
                let (code, answer) = api.call_with(method, &uri, ty, &body).await;
                assert!(code < 300, "{method} {uri}: {answer}");
            }
            let Some(kv) = t.server.generic.store().get(&key) else {
                panic!("{key} is not stored");
            };
            let (code, mut got) = api
                .call_raw("GET", &pod, "application/json", Vec::new())
                .await;
            assert_eq!(code, 200);
            // The answer ends its JSON with a newline, as upstream's does.
            if got.last() == Some(&b'\n') {
                got.pop();
            }
            let spliced = t.server.generic.served_json(&res, &kv);
            assert_eq!(
                spliced.as_deref().map(String::from_utf8_lossy),
                Some(String::from_utf8_lossy(&got)),
                "after {method} {uri}"
            );
        }
    }

    #[tokio::test]
    async fn lists_of_spliced_and_decoded_objects_are_what_decoding_serves() {
        // ConfigMaps written through the API (spliced) and one stored by an earlier
        // version, its keys in another order (decoded): the JSON list is each object as
        // the decoding list serves it, with and without a selector, in pages too.
        let t = crate::test_util::TestApiServer::new().await;
        let api = t.api();
        let path = "/api/v1/namespaces/default/configmaps";
        for i in 0..4 {
            api.create(
                path,
                json!({"metadata": {"name": format!("cm-{i}"), "labels": {"n": (i % 2).to_string()}},
                       "data": {"k": "v}{\"", "i": i.to_string()}}),
            )
            .await;
        }
        let store = t.server.generic.store();
        let key = "/registry/configmaps/default/cm-1";
        let Some(kv) = store.get(key) else {
            panic!("{key} is not stored");
        };
        let old_order = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm-1","namespace":"default","labels":{"n":"1"},"uid":"u1","creationTimestamp":"2026-01-01T00:00:00Z"},"data":{"k":"old"}}"#;
        if let Err(e) = store
            .update(key, Bytes::from_static(old_order), kv.mod_revision)
            .await
        {
            panic!("rewriting {key}: {e}");
        }
        let Some(res) = t
            .server
            .generic
            .registry()
            .snapshot()
            .get("", "v1", "configmaps")
            .cloned()
        else {
            panic!("configmaps are not served");
        };
        let generic = &t.server.generic;
        let selectors = [None, Some("n=1"), Some("n=0")];
        for (selector, limit) in selectors.iter().flat_map(|s| [(s, 0), (s, 2)]) {
            let opts = || ListOptions {
                label_selector: selector.and_then(|s| Selector::parse(s).ok()),
                limit,
                ..ListOptions::default()
            };
            let decoded = match generic.list(&res, Some("default"), &opts()).await {
                Ok(page) => page,
                Err(e) => panic!("{e:?}"),
            };
            let mut expected = Vec::new();
            for (i, obj) in decoded.items.iter().enumerate() {
                if i > 0 {
                    expected.push(b',');
                }
                expected.extend(serde_json::to_vec(obj).unwrap_or_default());
            }
            let mut got = Vec::new();
            let page = match generic
                .list_json(&res, Some("default"), &opts(), &mut got)
                .await
            {
                Ok(page) => page,
                Err(e) => panic!("{e:?}"),
            };
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&expected),
                "{selector:?} limit {limit}"
            );
            assert_eq!(page.continue_token, decoded.continue_token);
            assert_eq!(page.remaining, decoded.remaining);
        }
    }

    #[test]
    fn stored_bytes_in_another_form_are_not_spliced() {
        use super::super::served_json::object;
        let refused: &[&str] = &[
            // Stored by earlier versions: the version's place taken by the last key.
            r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"a","managedFields":[],"uid":"u"}}"#,
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"}}"#,
            r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"a"},"status":{},"spec":{}}"#,
            r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"a","resourceVersion":"1"}}"#,
            r#"{"kind":"Pod","apiVersion":"v1","metadata":{"x":1,"name":"a"}}"#,
            r#"{"kind":"Pod","apiVersion":"v2","metadata":{"name":"a"}}"#,
            r#"{"kind":"Pod","apiVersion":"v1","metadata":[]}"#,
            r#"{"kind":"Pod","apiVersion":"v1"}"#,
            // Not JSON of one object.
            r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"a"}} {}"#,
            r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"a"}"#,
            r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"a"},"spec":{"x":[}}"#,
            r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"a"},"spec":"x}"#,
            r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"a"},"spec":}"#,
            "",
            "[]",
        ];
        for bytes in refused {
            assert_eq!(object(bytes.as_bytes(), "Pod", "v1", 7), None, "{bytes}");
        }
        // Whitespace between tokens is allowed (and kept).
        let spaced = br#" { "kind" : "Pod" , "apiVersion":"v1", "metadata" : { "name" : "a" , "labels" : {} } } "#;
        let spliced = object(spaced, "Pod", "v1", 7).unwrap_or_default();
        let parsed: Value = serde_json::from_slice(&spliced).unwrap_or_default();
        assert_eq!(parsed["metadata"]["resourceVersion"], json!("7"));
        assert_eq!(parsed["metadata"]["labels"], json!({}));
    }

    #[test]
    fn random_objects_spliced_are_what_decoding_serves() {
        use rand::{Rng, SeedableRng};
        const KEYS: &[&str] = &[
            "name",
            "uid",
            "namespace",
            "labels",
            "generation",
            "creationTimestamp",
            "resourceVersion",
            "finalizers",
            "managedFields",
            "spec",
            "status",
            "kind",
            "apiVersion",
            "x",
            "y\"",
            "z}",
        ];
        fn value(rng: &mut rand::rngs::StdRng, depth: u32) -> Value {
            match rng.random_range(0..if depth > 2 { 5 } else { 7 }) {
                0 => Value::Null,
                1 => json!(rng.random::<bool>()),
                2 => json!(rng.random_range(-1000i64..1000)),
                // Short fractions: serde_json's float parsing is not exact for every
                // 17-digit number, so decoding may move one by an ulp where the splice
                // keeps the stored digits.
                3 => json!(f64::from(rng.random_range(-4000i32..4000)) / 8.0),
                4 => json!(["a", "\\", "\"{", "]", "é"][rng.random_range(0..5)]),
                5 => Value::Array(
                    (0..rng.random_range(0..4))
                        .map(|_| value(rng, depth + 1))
                        .collect(),
                ),
                _ => object(rng, depth + 1),
            }
        }
        fn object(rng: &mut rand::rngs::StdRng, depth: u32) -> Value {
            let mut m = serde_json::Map::new();
            for _ in 0..rng.random_range(0..6) {
                let k = KEYS[rng.random_range(0..KEYS.len())];
                m.insert(k.to_string(), value(rng, depth));
            }
            Value::Object(m)
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        for _ in 0..2000 {
            let mut obj = object(&mut rng, 0);
            if let Some(o) = obj.as_object_mut() {
                o.insert("kind".into(), json!("Pod"));
                o.insert("apiVersion".into(), json!("v1"));
                if rng.random::<bool>() || !o.get("metadata").is_some_and(Value::is_object) {
                    o.insert("metadata".into(), object(&mut rng, 1));
                }
            }
            let stored = encode(&obj).map(|b| b.to_vec()).unwrap_or_default();
            let spliced = super::super::served_json::object(&stored, "Pod", "v1", 7);
            let decoded = served_by_decoding(&stored, "Pod", "v1");
            assert_eq!(
                spliced.as_deref().map(String::from_utf8_lossy),
                Some(String::from_utf8_lossy(&decoded)),
                "{obj}"
            );
        }
    }

    /// `same_content` as it was written first: equality of copies less the version and
    /// the entry times.
    fn same_content_by_copy(a: &Value, b: &Value) -> bool {
        let strip = |v: &Value| {
            let mut v = v.clone();
            if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("resourceVersion");
                if let Some(Value::Array(entries)) = m.get_mut("managedFields") {
                    for e in entries.iter_mut().filter_map(Value::as_object_mut) {
                        e.remove("time");
                    }
                }
            }
            v
        };
        strip(a) == strip(b)
    }

    #[test]
    fn same_content_ignores_only_the_version_and_entry_times() {
        let base = json!({"kind": "ConfigMap",
            "metadata": {"name": "a", "resourceVersion": "7",
                         "managedFields": [{"manager": "m", "time": "t1"}, "odd"]},
            "data": {"k": "v"}});
        let variants = [
            json!({"kind": "ConfigMap",
                "metadata": {"name": "a", "resourceVersion": "8",
                             "managedFields": [{"manager": "m", "time": "t2"}, "odd"]},
                "data": {"k": "v"}}),
            json!({"data": {"k": "v"}, "kind": "ConfigMap",
                "metadata": {"managedFields": [{"time": "t3", "manager": "m"}, "odd"],
                             "name": "a"}}),
            json!({"kind": "ConfigMap",
                "metadata": {"name": "a", "resourceVersion": "7",
                             "managedFields": [{"manager": "n", "time": "t1"}, "odd"]},
                "data": {"k": "v"}}),
            json!({"kind": "ConfigMap",
                "metadata": {"name": "a", "resourceVersion": "7",
                             "managedFields": [{"manager": "m"}, "odd"]},
                "data": {"k": "v"}}),
            json!({"kind": "ConfigMap",
                "metadata": {"name": "a", "resourceVersion": "7",
                             "managedFields": [{"manager": "m", "time": "t1"}]},
                "data": {"k": "v"}}),
            json!({"kind": "ConfigMap",
                "metadata": {"name": "a", "resourceVersion": "7", "uid": "u",
                             "managedFields": [{"manager": "m", "time": "t1"}, "odd"]},
                "data": {"k": "v"}}),
            json!({"kind": "ConfigMap",
                "metadata": {"name": "a", "resourceVersion": "7",
                             "managedFields": [{"manager": "m", "time": "t1"}, "odd"]},
                "data": {"k": "w"}}),
            json!({"kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}}),
            json!({"kind": "ConfigMap", "metadata": "a", "data": {"k": "v"}}),
            json!({"kind": "ConfigMap", "data": {"k": "v"}}),
            json!(["not", "an", "object"]),
        ];
        let mut equal = 0;
        for a in std::iter::once(&base).chain(&variants) {
            for b in std::iter::once(&base).chain(&variants) {
                let want = same_content_by_copy(a, b);
                assert_eq!(same_content(a, b), want, "{a} vs {b}");
                equal += usize::from(want && a != b);
            }
        }
        // The first two variants differ from the base only in what is ignored.
        assert!(equal >= 6, "{equal}");
    }
}
