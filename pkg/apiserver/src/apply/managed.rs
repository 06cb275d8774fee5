//! `metadata.managedFields`: entries, their JSON form and validation, manager identifiers,
//! the order entries are written in, and the cap on the number of update managers.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde_json::{Map, Value, json};

use super::fieldpath::{FieldSet, FieldsV1Error};
use super::merge::{ManagedSets, VersionedSet};
use k1s_apimachinery::goformat::{self, JsonStyle};

/// How a manager last wrote its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ManagedFieldsOperation {
    /// A server-side apply.
    Apply,
    /// Any other write: create, update, patch.
    Update,
}

impl ManagedFieldsOperation {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Apply => "Apply",
            Self::Update => "Update",
        }
    }
}

/// One entry of `metadata.managedFields`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedFieldsEntry {
    /// The manager's name (`kubectl`, `kube-controller-manager`).
    pub manager: String,
    /// Apply or Update.
    pub operation: ManagedFieldsOperation,
    /// The API version the fields were written in (`apps/v1`).
    pub api_version: String,
    /// When the manager last changed the object, RFC 3339 in UTC with seconds
    /// (`2024-05-01T10:00:00Z`); none when upstream records none.
    pub time: Option<String>,
    /// Always `FieldsV1`.
    pub fields_type: String,
    /// The fields the manager owns.
    pub fields_v1: FieldSet,
    /// The subresource written through (`status`); empty for the main resource.
    pub subresource: String,
}

impl ManagedFieldsEntry {
    /// The entry as JSON, fields in upstream's order, empty ones omitted.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        if !self.manager.is_empty() {
            m.insert("manager".into(), json!(self.manager));
        }
        m.insert("operation".into(), json!(self.operation.as_str()));
        if !self.api_version.is_empty() {
            m.insert("apiVersion".into(), json!(self.api_version));
        }
        if let Some(t) = &self.time {
            m.insert("time".into(), json!(t));
        }
        if !self.fields_type.is_empty() {
            m.insert("fieldsType".into(), json!(self.fields_type));
        }
        m.insert("fieldsV1".into(), self.fields_v1.to_fields_v1());
        if !self.subresource.is_empty() {
            m.insert("subresource".into(), json!(self.subresource));
        }
        Value::Object(m)
    }

    /// The manager identifier upstream keys entries by.
    pub(crate) fn id(&self) -> String {
        manager_id(
            &self.manager,
            self.operation.as_str(),
            &self.api_version,
            &self.subresource,
        )
    }
}

/// Why `metadata.managedFields` could not be read (upstream's `DecodeManagedFields`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManagedFieldsError {
    /// Not a list of objects with the right field types.
    #[error("malformed managed fields: {0}")]
    Malformed(String),
    /// An operation other than `Apply` or `Update`.
    #[error("operation must be `Apply` or `Update`")]
    Operation,
    /// An empty `apiVersion`.
    #[error("apiVersion must not be empty")]
    ApiVersion,
    /// No `fieldsType`.
    #[error("missing fieldsType in managed fields entry {0}")]
    MissingFieldsType(usize),
    /// A `fieldsType` other than `FieldsV1`.
    #[error("invalid fieldsType {quoted} in managed fields entry {index}", quoted = goformat::quote(.fields_type))]
    InvalidFieldsType {
        /// The value given.
        fields_type: String,
        /// The entry's index.
        index: usize,
    },
    /// The `time` is not RFC 3339.
    #[error("parsing time {quoted} as \"2006-01-02T15:04:05Z07:00\": cannot parse", quoted = goformat::quote(.0))]
    Time(String),
    /// `fieldsV1` is not a valid field set.
    #[error("error decoding versioned set from {entry}: error decoding set: {source}")]
    Set {
        /// The entry as Go's `%v` prints it.
        entry: String,
        /// What was wrong.
        source: FieldsV1Error,
    },
}

fn str_field<'v>(o: &'v Map<String, Value>, key: &str) -> Result<&'v str, ManagedFieldsError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(""),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(ManagedFieldsError::Malformed(format!(
            "cannot unmarshal {} into field {key} of type string",
            json_kind(other)
        ))),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Go's `%v` of a `ManagedFieldsEntry`, for error messages.
fn entry_go_v(o: &Map<String, Value>, time: Option<i64>) -> String {
    let s = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let time = match time {
        Some(secs) => {
            let t = format_rfc3339(secs);
            let date = t.get(..10).unwrap_or_default();
            let clock = t.get(11..19).unwrap_or_default();
            format!("{date} {clock} +0000 UTC")
        }
        None => "<nil>".into(),
    };
    let fields = match o.get("fieldsV1") {
        None | Some(Value::Null) => "<nil>".into(),
        Some(v) => goformat::to_json(v, JsonStyle::JSONITER_RAW),
    };
    format!(
        "{{{} {} {} {} {} {} {}}}",
        s("manager"),
        s("operation"),
        s("apiVersion"),
        time,
        s("fieldsType"),
        fields,
        s("subresource")
    )
}

/// Reads `metadata.managedFields` (a JSON list) with upstream's checks, in its order:
/// operation, apiVersion, fieldsType, then the field set.
pub fn decode_managed_fields(v: &Value) -> Result<Vec<ManagedFieldsEntry>, ManagedFieldsError> {
    let items = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        other => {
            return Err(ManagedFieldsError::Malformed(format!(
                "cannot unmarshal {} into a list of managed fields entries",
                json_kind(other)
            )));
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::Object(o) = item else {
            return Err(ManagedFieldsError::Malformed(format!(
                "cannot unmarshal {} into a managed fields entry",
                json_kind(item)
            )));
        };
        let manager = str_field(o, "manager")?;
        let operation = str_field(o, "operation")?;
        let api_version = str_field(o, "apiVersion")?;
        let fields_type = str_field(o, "fieldsType")?;
        let subresource = str_field(o, "subresource")?;
        let time = match o.get("time") {
            None | Some(Value::Null) => None,
            Some(Value::String(t)) => {
                Some(parse_rfc3339(t).ok_or_else(|| ManagedFieldsError::Time(t.clone()))?)
            }
            Some(other) => {
                return Err(ManagedFieldsError::Malformed(format!(
                    "cannot unmarshal {} into field time",
                    json_kind(other)
                )));
            }
        };
        let operation = match operation {
            "Apply" => ManagedFieldsOperation::Apply,
            "Update" => ManagedFieldsOperation::Update,
            _ => return Err(ManagedFieldsError::Operation),
        };
        if api_version.is_empty() {
            return Err(ManagedFieldsError::ApiVersion);
        }
        match fields_type {
            "FieldsV1" => {}
            "" => return Err(ManagedFieldsError::MissingFieldsType(i)),
            other => {
                return Err(ManagedFieldsError::InvalidFieldsType {
                    fields_type: other.to_string(),
                    index: i,
                });
            }
        }
        let fields_v1 = match o.get("fieldsV1") {
            None => FieldSet::new(),
            Some(f) => FieldSet::from_fields_v1(f).map_err(|source| ManagedFieldsError::Set {
                entry: entry_go_v(o, time),
                source,
            })?,
        };
        out.push(ManagedFieldsEntry {
            manager: manager.to_string(),
            operation,
            api_version: api_version.to_string(),
            time: time.map(format_rfc3339),
            fields_type: fields_type.to_string(),
            fields_v1,
            subresource: subresource.to_string(),
        });
    }
    Ok(out)
}

/// The entries as the JSON list of `metadata.managedFields`.
pub fn encode_managed_fields(entries: &[ManagedFieldsEntry]) -> Value {
    Value::Array(entries.iter().map(ManagedFieldsEntry::to_json).collect())
}

/// Sets `metadata.managedFields` of an object; no entries removes the field, as upstream
/// leaves it nil.
pub fn set_managed_fields(obj: &mut Value, entries: &[ManagedFieldsEntry]) {
    let Value::Object(o) = obj else { return };
    if entries.is_empty() {
        if let Some(Value::Object(meta)) = o.get_mut("metadata") {
            meta.shift_remove("managedFields");
        }
        return;
    }
    let meta = o
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    if let Value::Object(meta) = meta {
        meta.insert("managedFields".into(), encode_managed_fields(entries));
    }
}

/// Removes `metadata.managedFields` from an object.
pub(crate) fn strip_managed_fields(obj: &mut Value) {
    if let Some(Value::Object(meta)) = obj.get_mut("metadata") {
        meta.shift_remove("managedFields");
    }
}

/// A field error of upstream's `ValidateManagedFields` (object metadata validation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedFieldsFieldError {
    /// The field (`metadata.managedFields[0].operation`).
    pub field: String,
    /// `Invalid value` or `Too long`.
    pub kind: FieldErrorKind,
    /// The offending value.
    pub value: String,
    /// What is wrong with it.
    pub detail: String,
}

/// The kinds of field errors `ValidateManagedFields` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorKind {
    /// `field.Invalid`.
    Invalid,
    /// `field.TooLong`.
    TooLong,
}

impl fmt::Display for ManagedFieldsFieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            FieldErrorKind::Invalid => write!(
                f,
                "{}: Invalid value: {}: {}",
                self.field,
                goformat::quote(&self.value),
                self.detail
            ),
            FieldErrorKind::TooLong => write!(f, "{}: Too long: {}", self.field, self.detail),
        }
    }
}

/// The most bytes a field manager name may have.
pub const FIELD_MANAGER_MAX_LENGTH: usize = 128;

/// upstream's `ValidateFieldManager`.
pub fn validate_field_manager(manager: &str, field: &str) -> Vec<ManagedFieldsFieldError> {
    let mut errs = Vec::new();
    if manager.len() > FIELD_MANAGER_MAX_LENGTH {
        errs.push(ManagedFieldsFieldError {
            field: field.to_string(),
            kind: FieldErrorKind::TooLong,
            value: manager.to_string(),
            detail: format!("may not be more than {FIELD_MANAGER_MAX_LENGTH} bytes"),
        });
    }
    for (i, c) in manager.char_indices() {
        if !goformat::is_print(c) {
            errs.push(ManagedFieldsFieldError {
                field: field.to_string(),
                kind: FieldErrorKind::Invalid,
                value: manager.to_string(),
                detail: format!("invalid character U+{:04X} (at position {i})", c as u32)
                    + &go_char_suffix(c),
            });
        }
    }
    errs
}

/// The `'c'` part of Go's `%#U`, present when the character is printable.
fn go_char_suffix(c: char) -> String {
    if goformat::is_print(c) {
        format!(" '{c}'")
    } else {
        String::new()
    }
}

/// upstream's `ValidateManagedFields` over the JSON list of `metadata.managedFields`.
pub fn validate_managed_fields(v: &Value) -> Vec<ManagedFieldsFieldError> {
    let mut errs = Vec::new();
    let Value::Array(items) = v else { return errs };
    for (i, item) in items.iter().enumerate() {
        let base = format!("metadata.managedFields[{i}]");
        let s = |k: &str| {
            item.get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let op = s("operation");
        if op != "Apply" && op != "Update" {
            errs.push(ManagedFieldsFieldError {
                field: format!("{base}.operation"),
                kind: FieldErrorKind::Invalid,
                value: op,
                detail: "must be `Apply` or `Update`".into(),
            });
        }
        let ft = s("fieldsType");
        if !ft.is_empty() && ft != "FieldsV1" {
            errs.push(ManagedFieldsFieldError {
                field: format!("{base}.fieldsType"),
                kind: FieldErrorKind::Invalid,
                value: ft,
                detail: "must be `FieldsV1`".into(),
            });
        }
        errs.extend(validate_field_manager(
            &s("manager"),
            &format!("{base}.manager"),
        ));
        let sub = s("subresource");
        if sub.len() > 256 {
            errs.push(ManagedFieldsFieldError {
                field: format!("{base}.subresource"),
                kind: FieldErrorKind::TooLong,
                value: sub,
                detail: "may not be more than 256 bytes".into(),
            });
        }
    }
    errs
}

/// upstream's `BuildManagerIdentifier`: the entry without fields and time (and without the
/// API version for appliers), as Go's `encoding/json` writes it.
pub(crate) fn manager_id(
    manager: &str,
    operation: &str,
    api_version: &str,
    subresource: &str,
) -> String {
    let mut out = String::from("{");
    let mut first = true;
    let mut field = |out: &mut String, name: &str, value: &str| {
        if value.is_empty() {
            return;
        }
        if !first {
            out.push(',');
        }
        first = false;
        out.push('"');
        out.push_str(name);
        out.push_str("\":");
        goformat::write_string(out, value, JsonStyle::GO);
    };
    field(&mut out, "manager", manager);
    field(&mut out, "operation", operation);
    if operation != "Apply" {
        field(&mut out, "apiVersion", api_version);
    }
    field(&mut out, "subresource", subresource);
    out.push('}');
    out
}

/// The parts of a manager identifier.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ManagerId {
    /// The manager's name.
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    /// The API version (updaters only).
    pub api_version: String,
    /// The subresource.
    pub subresource: String,
}

impl ManagerId {
    /// Parses an identifier; anything else is taken as a bare manager name.
    pub fn parse(id: &str) -> Self {
        match serde_json::from_str::<Value>(id) {
            Ok(Value::Object(o)) => {
                let s = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                Self {
                    manager: s("manager"),
                    operation: s("operation"),
                    api_version: s("apiVersion"),
                    subresource: s("subresource"),
                }
            }
            _ => Self {
                manager: id.to_string(),
                ..Self::default()
            },
        }
    }

    /// upstream's `printManager`: `"kubectl"`, `"kube-controller-manager" with subresource
    /// "status" using apps/v1`.
    pub fn display(&self) -> String {
        let mut s = goformat::quote(&self.manager);
        if !self.subresource.is_empty() {
            s = format!(
                "{s} with subresource {}",
                goformat::quote(&self.subresource)
            );
        }
        if self.operation == "Update" {
            s = format!("{s} using {}", self.api_version);
        }
        s
    }
}

/// Managers with their fields and the times of their last changes, keyed by identifier
/// (upstream's `ManagedInterface`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Managed {
    /// The fields of each manager.
    pub sets: ManagedSets,
    /// The time of each manager's last change (an entry without a time maps to `None`).
    pub times: HashMap<String, Option<String>>,
}

impl Managed {
    /// From decoded entries; a later entry with the same identifier replaces an earlier one.
    pub fn from_entries(entries: &[ManagedFieldsEntry]) -> Self {
        Self::from_owned_entries(entries.to_vec())
    }

    /// [`Managed::from_entries`] of entries the caller gives up (their sets are moved).
    pub fn from_owned_entries(entries: Vec<ManagedFieldsEntry>) -> Self {
        let mut m = Self::default();
        for e in entries {
            let id = e.id();
            m.times.insert(id.clone(), e.time);
            m.sets.insert(
                id,
                VersionedSet {
                    set: e.fields_v1,
                    api_version: e.api_version,
                    applied: e.operation == ManagedFieldsOperation::Apply,
                },
            );
        }
        m
    }

    /// The entries, in upstream's order: operation, time, manager, API version, subresource.
    pub fn to_entries(&self) -> Vec<ManagedFieldsEntry> {
        let mut out: Vec<ManagedFieldsEntry> = self
            .sets
            .iter()
            .map(|(id, vs)| {
                let parts = ManagerId::parse(id);
                let operation = if vs.applied || parts.operation == "Apply" {
                    ManagedFieldsOperation::Apply
                } else {
                    ManagedFieldsOperation::Update
                };
                ManagedFieldsEntry {
                    manager: parts.manager,
                    operation,
                    api_version: vs.api_version.clone(),
                    time: self.times.get(id).cloned().flatten(),
                    fields_type: "FieldsV1".into(),
                    fields_v1: vs.set.clone(),
                    subresource: parts.subresource,
                }
            })
            .collect();
        out.sort_by(|p, q| {
            p.operation
                .as_str()
                .cmp(q.operation.as_str())
                .then_with(|| seconds(&p.time).cmp(&seconds(&q.time)))
                .then_with(|| p.manager.cmp(&q.manager))
                .then_with(|| p.api_version.cmp(&q.api_version))
                .then_with(|| p.subresource.cmp(&q.subresource))
        });
        out
    }

    fn time_of(&self, id: &str) -> i64 {
        self.times.get(id).map_or(0, seconds)
    }

    /// upstream's `capUpdateManagers`: merges the oldest update entries, per API version,
    /// into `ancient-changes` until at most `max` update entries remain.
    pub fn cap_update_managers(&mut self, max: usize) {
        let mut updaters: Vec<String> = self
            .sets
            .iter()
            .filter(|(_, vs)| !vs.applied)
            .map(|(id, _)| id.clone())
            .collect();
        if updaters.len() <= max {
            return;
        }
        updaters.sort_by(|a, b| self.time_of(a).cmp(&self.time_of(b)).then_with(|| a.cmp(b)));
        let mut first_of_version: BTreeMap<String, String> = BTreeMap::new();
        let mut length = updaters.len();
        for manager in &updaters {
            if length <= max {
                break;
            }
            let Some(vs) = self.sets.get(manager).cloned() else {
                continue;
            };
            let time = self.times.get(manager).cloned().flatten();
            let version = vs.api_version.clone();
            let bucket = manager_id("ancient-changes", "Update", &version, "");
            if let Some(first) = first_of_version.get(&version) {
                if !self.sets.contains_key(&bucket)
                    && let Some(s) = self.sets.remove(first)
                {
                    self.sets.insert(bucket.clone(), s);
                }
                let merged = match self.sets.get(&bucket) {
                    Some(b) => vs.set.union(&b.set),
                    None => vs.set.clone(),
                };
                self.sets.insert(
                    bucket.clone(),
                    VersionedSet {
                        set: merged,
                        api_version: vs.api_version,
                        applied: vs.applied,
                    },
                );
                self.sets.remove(manager);
                length -= 1;
                self.times.insert(bucket, time);
            } else {
                first_of_version.insert(version, manager.clone());
            }
        }
    }
}

/// Unix seconds of an RFC 3339 time; none (or unparsable) counts as zero, as upstream's nil.
pub(crate) fn seconds(t: &Option<String>) -> i64 {
    t.as_deref().and_then(parse_rfc3339).unwrap_or(0)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parses an RFC 3339 time (`2006-01-02T15:04:05Z07:00`, optional fraction) to Unix seconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, mo, d, h, mi, se) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 59 {
        return None;
    }
    let mut rest = s.get(19..)?;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = frac.get(digits..)?;
    }
    let offset = match rest {
        "Z" => 0,
        _ => {
            let rb = rest.as_bytes();
            if rb.len() != 6 || !(rb[0] == b'+' || rb[0] == b'-') || rb[3] != b':' {
                return None;
            }
            let oh: i64 = rest.get(1..3)?.parse().ok()?;
            let om: i64 = rest.get(4..6)?.parse().ok()?;
            let off = oh * 3600 + om * 60;
            if rb[0] == b'-' { -off } else { off }
        }
    };
    Some(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - offset)
}

/// Formats Unix seconds as upstream writes a `metav1.Time` (`2006-01-02T15:04:05Z`).
pub fn format_rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}
