//! Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`) → JSON.
//!
//! kubectl 1.32 and newer send the objects its typed clients create as protobuf. The body
//! is the 4-byte magic `k8s\0` and a `runtime.Unknown` message whose `typeMeta` names the
//! kind and whose `raw` is the object's own message. This module turns that into the JSON
//! value Go's `json.Marshal` would have written for the same object, so the request then
//! takes exactly the path of a JSON body: the layouts come from
//! [`super::proto_facts`] (generated from the `generated.proto` files and Go types).
//!
//! Go decodes protobuf into structs and writes every non-pointer field back out, so a
//! protobuf body carries `namespace: ""` and `generation: 0` where JSON would have had
//! nothing; fields whose Go tag says `omitempty` drop such zero values again ([`OMIT`]),
//! while a zero in a pointer field (`replicas: 0`) is kept, as in JSON.

use base64::Engine;
use serde_json::{Map as JsonMap, Number, Value};

use super::proto_facts::{GROUPS, MESSAGES};

/// The Content-Type of Kubernetes protobuf.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The prefix of every Kubernetes protobuf document.
pub const MAGIC: &[u8] = b"k8s\0";

/// Deepest message nesting accepted (the deepest built-in object nests far less).
const MAX_DEPTH: usize = 100;

/// The package of meta/v1, whose option kinds (`DeleteOptions` …) every group accepts.
const META_PACKAGE: &str = "k8s.io.apimachinery.pkg.apis.meta.v1";

/// Field flag: drop the field from JSON when its value is zero (Go `omitempty` on a
/// non-pointer scalar).
pub const OMIT: u8 = 1;
/// Field flag: the field is a message embedded with `json:",inline"`; its fields go into
/// the parent object.
pub const INLINE: u8 = 2;

/// A field's value type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// `bool`.
    Bool,
    /// `int32`.
    Int32,
    /// `int64`.
    Int64,
    /// `uint32`.
    Uint32,
    /// `uint64`.
    Uint64,
    /// `sint32` (zigzag).
    Sint32,
    /// `sint64` (zigzag).
    Sint64,
    /// `fixed32`.
    Fixed32,
    /// `fixed64`.
    Fixed64,
    /// `sfixed32`.
    Sfixed32,
    /// `sfixed64`.
    Sfixed64,
    /// `float`.
    Float,
    /// `double`.
    Double,
    /// `string`.
    String,
    /// `bytes` (base64 in JSON, as Go writes `[]byte`).
    Bytes,
    /// A message: index into [`MESSAGES`].
    Msg(u16),
}

/// How often a field occurs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    /// `optional`: at most one value (the last one wins; messages merge).
    One,
    /// `repeated`: a JSON array; numeric scalars may be packed.
    Many,
    /// `map<key, value>`: repeated entries {key = 1, value = 2}; a JSON object.
    Map(Ty),
}

/// Messages whose JSON form is not an object of their fields (custom `MarshalJSON` in Go).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    /// An ordinary message: a JSON object.
    Plain,
    /// `meta.v1.Time` {seconds = 1, nanos = 2}: RFC 3339 in seconds, `null` when empty.
    Time,
    /// `meta.v1.MicroTime`: RFC 3339 with six fraction digits.
    MicroTime,
    /// `meta.v1.Duration` {duration = 1 (ns)}: a Go duration string.
    Duration,
    /// `resource.Quantity` {string = 1}: the string.
    Quantity,
    /// `intstr.IntOrString` {type = 1, intVal = 2, strVal = 3}: a number or a string.
    IntOrString,
    /// Raw JSON bytes in field 1 (`RawExtension`, `FieldsV1`, apiextensions `JSON`).
    RawJson,
    /// A Go named slice type wrapped in a message {items = 1}: the array.
    Items,
    /// apiextensions `JSONSchemaPropsOrArray` {schema = 1, jSONSchemas = 2}.
    PropsOrArray,
    /// apiextensions `JSONSchemaPropsOrBool` {allows = 1, schema = 2}.
    PropsOrBool,
    /// apiextensions `JSONSchemaPropsOrStringArray` {schema = 1, property = 2}.
    PropsOrStringArray,
}

/// One field of a message.
#[derive(Debug)]
pub struct Field {
    /// Field number.
    pub number: u32,
    /// JSON name (empty for [`INLINE`] fields).
    pub json: &'static str,
    /// Value type (of map values, for maps).
    pub ty: Ty,
    /// Optional, repeated or map.
    pub label: Label,
    /// [`OMIT`], [`INLINE`] or 0.
    pub flags: u8,
}

/// One message.
#[derive(Debug)]
pub struct Message {
    /// Full proto name, e.g. `k8s.io.api.apps.v1.Deployment`.
    pub name: &'static str,
    /// How its JSON form is made.
    pub special: Special,
    /// Fields, sorted by number.
    pub fields: &'static [Field],
}

impl Message {
    fn field(&self, number: u32) -> Option<&'static Field> {
        self.fields
            .binary_search_by_key(&number, |f| f.number)
            .ok()
            .map(|i| &self.fields[i])
    }

    fn json_of(&self, number: u32) -> &'static str {
        self.field(number).map_or("", |f| f.json)
    }
}

/// Why a protobuf body could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtoError {
    /// The body does not start with `k8s\0`.
    #[error(
        "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]"
    )]
    NotProtobuf,
    /// The input ended inside a value.
    #[error("unexpected EOF")]
    Truncated,
    /// A varint longer than 64 bits.
    #[error("proto: integer overflow")]
    Overflow,
    /// A field key with number 0 or a deprecated group wire type.
    #[error("proto: illegal tag {0} or wire type")]
    BadTag(u64),
    /// A field whose wire type does not fit its declared type.
    #[error("proto: wrong wireType = {wire} for field {field} of {message}")]
    WireType {
        /// The message.
        message: &'static str,
        /// The field's JSON name.
        field: &'static str,
        /// The wire type found.
        wire: u8,
    },
    /// `typeMeta` names a kind this server has no protobuf layout for.
    #[error("no kind \"{kind}\" is registered for version \"{api_version}\"")]
    UnknownKind {
        /// The apiVersion given.
        api_version: String,
        /// The kind given.
        kind: String,
    },
    /// The object nests messages deeper than [`MAX_DEPTH`].
    #[error("proto: object nested deeper than {MAX_DEPTH} messages")]
    TooDeep,
    /// `runtime.Unknown.contentEncoding` is set (no encoding is supported).
    #[error("unsupported content encoding {0:?}")]
    ContentEncoding(String),
    /// A value that has no JSON form (NaN, an impossible IntOrString type, a bad time).
    #[error("{0}")]
    Value(String),
    /// Embedded raw JSON that does not parse.
    #[error("invalid embedded JSON: {0}")]
    Json(String),
}

/// Decodes a Kubernetes protobuf document of a built-in kind into its JSON value, with
/// `apiVersion` and `kind` set from the envelope.
pub fn decode_object(body: &[u8]) -> Result<Value, ProtoError> {
    decode_envelope(body, 0)
}

fn decode_envelope(body: &[u8], depth: usize) -> Result<Value, ProtoError> {
    let data = body.strip_prefix(MAGIC).ok_or(ProtoError::NotProtobuf)?;
    let (mut api_version, mut kind, mut raw, mut encoding) =
        (String::new(), String::new(), &[][..], String::new());
    let mut r = Reader::new(data);
    while !r.done() {
        let (number, wire) = r.key()?;
        match (number, wire) {
            (1, 2) => {
                let mut t = Reader::new(r.bytes()?);
                while !t.done() {
                    match t.key()? {
                        (1, 2) => api_version = lossy(t.bytes()?),
                        (2, 2) => kind = lossy(t.bytes()?),
                        (_, w) => t.skip(w)?,
                    }
                }
            }
            (2, 2) => raw = r.bytes()?,
            (3, 2) => encoding = lossy(r.bytes()?),
            (_, w) => r.skip(w)?,
        }
    }
    if !encoding.is_empty() {
        return Err(ProtoError::ContentEncoding(encoding));
    }
    let message = message_for(&api_version, &kind).ok_or_else(|| ProtoError::UnknownKind {
        api_version: api_version.clone(),
        kind: kind.clone(),
    })?;
    let mut obj = JsonMap::new();
    obj.insert("apiVersion".into(), Value::String(api_version));
    obj.insert("kind".into(), Value::String(kind));
    match message.special {
        Special::Plain => decode_into(message, raw, &mut obj, depth + 1)?,
        _ => {
            return Err(ProtoError::Value(format!(
                "{} is not an object kind",
                message.name
            )));
        }
    }
    Ok(Value::Object(obj))
}

/// The message of a kind: the group-version's package, then meta/v1 (option kinds).
fn message_for(api_version: &str, kind: &str) -> Option<&'static Message> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    if kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let package = GROUPS
        .iter()
        .find(|(g, v, _)| *g == group && *v == version)
        .map(|(_, _, p)| *p)?;
    [package, META_PACKAGE]
        .iter()
        .find_map(|p| lookup(&format!("{p}.{kind}")))
}

fn lookup(name: &str) -> Option<&'static Message> {
    MESSAGES
        .binary_search_by(|m| m.name.cmp(name))
        .ok()
        .map(|i| &MESSAGES[i])
}

// === wire format ===

/// Reads protobuf wire format from a slice; every read is bounds-checked.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    fn done(&self) -> bool {
        self.buf.is_empty()
    }

    fn varint(&mut self) -> Result<u64, ProtoError> {
        let mut v = 0u64;
        for i in 0..10 {
            let (&b, rest) = self.buf.split_first().ok_or(ProtoError::Truncated)?;
            self.buf = rest;
            if i == 9 && b > 1 {
                return Err(ProtoError::Overflow);
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(ProtoError::Overflow)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        if n > self.buf.len() {
            return Err(ProtoError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn bytes(&mut self) -> Result<&'a [u8], ProtoError> {
        let n = self.varint()?;
        self.take(usize::try_from(n).map_err(|_| ProtoError::Truncated)?)
    }

    fn fixed32(&mut self) -> Result<u32, ProtoError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn fixed64(&mut self) -> Result<u64, ProtoError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// A field key: (number, wire type).
    fn key(&mut self) -> Result<(u32, u8), ProtoError> {
        let k = self.varint()?;
        let wire = (k & 7) as u8;
        let number = k >> 3;
        if number == 0 || number > u64::from(u32::MAX >> 3) || matches!(wire, 3 | 4 | 6 | 7) {
            return Err(ProtoError::BadTag(k));
        }
        Ok((number as u32, wire))
    }

    fn skip(&mut self, wire: u8) -> Result<(), ProtoError> {
        match wire {
            0 => self.varint().map(drop),
            1 => self.take(8).map(drop),
            2 => self.bytes().map(drop),
            5 => self.take(4).map(drop),
            w => Err(ProtoError::BadTag(u64::from(w))),
        }
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

// === messages → JSON ===

/// Decodes the fields of a plain message into `obj` (merging, as protobuf does when a
/// message occurs twice), then drops the zero values of `omitempty` fields.
fn decode_into(
    message: &'static Message,
    data: &[u8],
    obj: &mut JsonMap<String, Value>,
    depth: usize,
) -> Result<(), ProtoError> {
    if depth > MAX_DEPTH {
        return Err(ProtoError::TooDeep);
    }
    let mut r = Reader::new(data);
    while !r.done() {
        let (number, wire) = r.key()?;
        let Some(f) = message.field(number) else {
            r.skip(wire)?;
            continue;
        };
        let wrong = || ProtoError::WireType {
            message: message.name,
            field: f.json,
            wire,
        };
        match f.label {
            Label::One if f.flags & INLINE != 0 => {
                let Ty::Msg(i) = f.ty else {
                    return Err(wrong());
                };
                if wire != 2 {
                    return Err(wrong());
                }
                decode_into(&MESSAGES[usize::from(i)], r.bytes()?, obj, depth + 1)?;
            }
            Label::One => {
                if let Ty::Msg(i) = f.ty
                    && MESSAGES[usize::from(i)].special == Special::Plain
                {
                    if wire != 2 {
                        return Err(wrong());
                    }
                    let data = r.bytes()?;
                    let slot = obj
                        .entry(f.json)
                        .or_insert_with(|| Value::Object(JsonMap::new()));
                    if !slot.is_object() {
                        *slot = Value::Object(JsonMap::new());
                    }
                    if let Value::Object(inner) = slot {
                        decode_into(&MESSAGES[usize::from(i)], data, inner, depth + 1)?;
                    }
                } else {
                    let v = value(f.ty, wire, &mut r, depth).map_err(|e| or_wrong(e, wrong))?;
                    obj.insert(f.json.to_string(), v);
                }
            }
            Label::Many => {
                let slot = obj
                    .entry(f.json)
                    .or_insert_with(|| Value::Array(Vec::new()));
                if !slot.is_array() {
                    *slot = Value::Array(Vec::new());
                }
                let Value::Array(items) = slot else { continue };
                if wire == 2 && packable(f.ty) {
                    let mut p = Reader::new(r.bytes()?);
                    let w = scalar_wire(f.ty);
                    while !p.done() {
                        items.push(value(f.ty, w, &mut p, depth)?);
                    }
                } else {
                    items.push(value(f.ty, wire, &mut r, depth).map_err(|e| or_wrong(e, wrong))?);
                }
            }
            Label::Map(key_ty) => {
                if wire != 2 {
                    return Err(wrong());
                }
                let (k, v) =
                    map_entry(key_ty, f.ty, r.bytes()?, depth).map_err(|e| or_wrong(e, wrong))?;
                let slot = obj
                    .entry(f.json)
                    .or_insert_with(|| Value::Object(JsonMap::new()));
                if !slot.is_object() {
                    *slot = Value::Object(JsonMap::new());
                }
                if let Value::Object(m) = slot {
                    m.insert(k, v);
                }
            }
        }
    }
    for f in message.fields.iter().filter(|f| f.flags & OMIT != 0) {
        if obj.get(f.json).is_some_and(is_zero) {
            obj.remove(f.json);
        }
    }
    Ok(())
}

/// A wire-type mismatch found below a field is reported with that field's name.
fn or_wrong(e: ProtoError, wrong: impl Fn() -> ProtoError) -> ProtoError {
    match e {
        ProtoError::WireType { message: "", .. } => wrong(),
        e => e,
    }
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

fn packable(ty: Ty) -> bool {
    !matches!(ty, Ty::String | Ty::Bytes | Ty::Msg(_))
}

fn scalar_wire(ty: Ty) -> u8 {
    match ty {
        Ty::Fixed64 | Ty::Sfixed64 | Ty::Double => 1,
        Ty::Fixed32 | Ty::Sfixed32 | Ty::Float => 5,
        Ty::String | Ty::Bytes | Ty::Msg(_) => 2,
        _ => 0,
    }
}

/// One map entry {key = 1, value = 2}; a missing key or value is its zero value.
fn map_entry(
    key_ty: Ty,
    value_ty: Ty,
    data: &[u8],
    depth: usize,
) -> Result<(String, Value), ProtoError> {
    let mut r = Reader::new(data);
    let (mut key, mut val) = (None, None);
    while !r.done() {
        let (number, wire) = r.key()?;
        match number {
            1 => key = Some(value(key_ty, wire, &mut r, depth)?),
            2 => val = Some(value(value_ty, wire, &mut r, depth)?),
            _ => r.skip(wire)?,
        }
    }
    let key = match key {
        Some(Value::String(s)) => s,
        Some(v) => v.to_string(),
        None => match key_ty {
            Ty::String => String::new(),
            Ty::Bool => "false".into(),
            _ => "0".into(),
        },
    };
    let val = match val {
        Some(v) => v,
        None => zero(value_ty, depth)?,
    };
    Ok((key, val))
}

/// The JSON of a type's zero value (a map entry without a value).
fn zero(ty: Ty, depth: usize) -> Result<Value, ProtoError> {
    Ok(match ty {
        Ty::Bool => Value::Bool(false),
        Ty::String | Ty::Bytes => Value::String(String::new()),
        Ty::Msg(i) => message_value(&MESSAGES[usize::from(i)], &[], depth + 1)?,
        _ => Value::from(0),
    })
}

/// Reads one value of `ty` whose key had wire type `wire`.
fn value(ty: Ty, wire: u8, r: &mut Reader<'_>, depth: usize) -> Result<Value, ProtoError> {
    if wire != scalar_wire(ty) {
        return Err(ProtoError::WireType {
            message: "",
            field: "",
            wire,
        });
    }
    Ok(match ty {
        Ty::Bool => Value::Bool(r.varint()? != 0),
        Ty::Int32 => Value::from(r.varint()? as i32),
        Ty::Int64 => Value::from(r.varint()? as i64),
        Ty::Uint32 => Value::from(r.varint()? as u32),
        Ty::Uint64 => Value::from(r.varint()?),
        Ty::Sint32 => {
            let v = r.varint()? as u32;
            Value::from((v >> 1) as i32 ^ -((v & 1) as i32))
        }
        Ty::Sint64 => {
            let v = r.varint()?;
            Value::from((v >> 1) as i64 ^ -((v & 1) as i64))
        }
        Ty::Fixed32 => Value::from(r.fixed32()?),
        Ty::Sfixed32 => Value::from(r.fixed32()? as i32),
        Ty::Fixed64 => Value::from(r.fixed64()?),
        Ty::Sfixed64 => Value::from(r.fixed64()? as i64),
        Ty::Float => float(f64::from(f32::from_bits(r.fixed32()?)))?,
        Ty::Double => float(f64::from_bits(r.fixed64()?))?,
        Ty::String => Value::String(lossy(r.bytes()?)),
        Ty::Bytes => Value::String(base64::engine::general_purpose::STANDARD.encode(r.bytes()?)),
        Ty::Msg(i) => message_value(&MESSAGES[usize::from(i)], r.bytes()?, depth + 1)?,
    })
}

fn float(f: f64) -> Result<Value, ProtoError> {
    Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| ProtoError::Value(format!("json: unsupported value: {f}")))
}

/// The JSON value of one message, special forms included.
fn message_value(
    message: &'static Message,
    data: &[u8],
    depth: usize,
) -> Result<Value, ProtoError> {
    if depth > MAX_DEPTH {
        return Err(ProtoError::TooDeep);
    }
    let mut fields = JsonMap::new();
    // Special messages are small; their fields are read by number through the table.
    decode_into(message, data, &mut fields, depth)?;
    if message.special == Special::Plain {
        return Ok(Value::Object(fields));
    }
    let mut take = |n: u32| fields.remove(message.json_of(n));
    Ok(match message.special {
        // Returned above, before `take` borrowed the fields.
        Special::Plain => Value::Null,
        Special::Time | Special::MicroTime => {
            if data.is_empty() {
                return Ok(Value::Null);
            }
            let secs = take(1).and_then(|v| v.as_i64()).unwrap_or(0);
            let nanos = take(2).and_then(|v| v.as_i64()).unwrap_or(0);
            time(secs, nanos, message.special == Special::MicroTime)?
        }
        Special::Duration => {
            Value::String(go_duration(take(1).and_then(|v| v.as_i64()).unwrap_or(0)))
        }
        Special::Quantity => match take(1) {
            Some(Value::String(s)) if !s.is_empty() => Value::String(s),
            _ => Value::String("0".into()),
        },
        Special::IntOrString => {
            let ty = take(1).and_then(|v| v.as_i64()).unwrap_or(0);
            match ty {
                0 => take(2).unwrap_or_else(|| Value::from(0)),
                1 => take(3).unwrap_or_else(|| Value::String(String::new())),
                t => {
                    return Err(ProtoError::Value(format!(
                        "impossible IntOrString.Type {t}"
                    )));
                }
            }
        }
        Special::RawJson => match take(1) {
            Some(Value::String(b64)) => raw_json(&b64, depth)?,
            _ => Value::Null,
        },
        Special::Items => take(1).unwrap_or_else(|| Value::Array(Vec::new())),
        Special::PropsOrArray => match (take(1), take(2)) {
            (_, Some(Value::Array(a))) if !a.is_empty() => Value::Array(a),
            (Some(schema), _) => schema,
            _ => Value::Null,
        },
        Special::PropsOrBool => match (take(1), take(2)) {
            (_, Some(schema)) => schema,
            (allows, None) => Value::Bool(allows.is_some_and(|v| v == Value::Bool(true))),
        },
        Special::PropsOrStringArray => match (take(1), take(2)) {
            (_, Some(Value::Array(a))) if !a.is_empty() => Value::Array(a),
            (Some(schema), _) => schema,
            _ => Value::Null,
        },
    })
}

/// Embedded raw bytes (base64 from the bytes field): JSON, or a nested protobuf object.
fn raw_json(b64: &str, depth: usize) -> Result<Value, ProtoError> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| ProtoError::Json(e.to_string()))?;
    if raw.is_empty() {
        return Ok(Value::Null);
    }
    if raw.starts_with(MAGIC) {
        return decode_envelope(&raw, depth + 1);
    }
    serde_json::from_slice(&raw).map_err(|e| ProtoError::Json(e.to_string()))
}

/// RFC 3339 in UTC, as `metav1.Time` (seconds) and `metav1.MicroTime` write it.
fn time(secs: i64, nanos: i64, micro: bool) -> Result<Value, ProtoError> {
    // Go's time.Unix normalises nanoseconds outside [0, 1e9) into the seconds.
    let secs = secs
        .checked_add(nanos.div_euclid(1_000_000_000))
        .ok_or_else(|| ProtoError::Value("time out of range".into()))?;
    let nanos = nanos.rem_euclid(1_000_000_000);
    // Go's zero time.Time (0001-01-01T00:00:00Z) is written as null.
    if secs == -62_135_596_800 && nanos == 0 {
        return Ok(Value::Null);
    }
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        return Err(ProtoError::Value(format!(
            "Time.MarshalJSON: year outside of range [0,9999]: {y}"
        )));
    }
    let (hh, mm, ss) = (rem / 3600, rem / 60 % 60, rem % 60);
    let base = format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}");
    Ok(Value::String(if micro {
        format!("{base}.{:06}Z", nanos / 1000)
    } else {
        format!("{base}Z")
    }))
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Go's `time.Duration.String()`: `1h2m3.5s`, `150ms`, `0s`.
fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        let (unit, div) = match u {
            0..1_000 => ("ns", 1),
            1_000..1_000_000 => ("µs", 1_000),
            _ => ("ms", 1_000_000),
        };
        out.push_str(&fraction(u, div));
        out.push_str(unit);
    } else {
        let secs = u / 1_000_000_000;
        let (h, m) = (secs / 3600, secs / 60 % 60);
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if h > 0 || m > 0 {
            out.push_str(&format!("{m}m"));
        }
        out.push_str(&fraction(u % 60_000_000_000, 1_000_000_000));
        out.push('s');
    }
    if neg {
        out.insert(0, '-');
    }
    out
}

/// `v / div` with the fraction's trailing zeros dropped.
fn fraction(v: u64, div: u64) -> String {
    let (whole, frac) = (v / div, v % div);
    if frac == 0 {
        return whole.to_string();
    }
    let width = div.ilog10() as usize;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;
