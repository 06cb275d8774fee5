//! Field paths and field sets, and their `FieldsV1` form.
//!
//! A [`FieldSet`] is a trie of [`PathElement`]s: `members` are the elements that are
//! themselves in the set, `children` the elements below which there are further paths.
//! The ordering of elements, the set algebra and the `FieldsV1` encoding follow
//! structured-merge-diff's `fieldpath` package, so the bytes written into
//! `metadata.managedFields` are the ones upstream writes.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Number, Value};

use k1s_apimachinery::goformat::{self, JsonStyle};

/// One step of a path into an object.
#[derive(Debug, Clone)]
pub enum PathElement {
    /// A field of a struct or a key of a map: `f:name`.
    Field(String),
    /// The element of an associative list whose key fields have these values, sorted by
    /// field name: `k:{"containerPort":80,"protocol":"TCP"}`.
    Key(Vec<(String, Value)>),
    /// The element of a set (a list of scalars) with this value: `v:"value"`.
    Value(Value),
    /// An element of a list by position: `i:0`.
    Index(i64),
}

impl PathElement {
    /// A field element.
    pub fn field(name: impl Into<String>) -> Self {
        Self::Field(name.into())
    }

    /// A key element; the fields are sorted by name as upstream sorts them.
    pub fn key(mut fields: Vec<(String, Value)>) -> Self {
        // A stable sort by name only, as value.FieldList.Sort does.
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        Self::Key(fields)
    }

    fn rank(&self) -> u8 {
        match self {
            Self::Field(_) => 0,
            Self::Key(_) => 1,
            Self::Value(_) => 2,
            Self::Index(_) => 3,
        }
    }

    /// The `FieldsV1` key of this element (`f:name`, `k:{…}`, `v:…`, `i:0`).
    pub fn to_fields_v1_key(&self) -> String {
        match self {
            Self::Field(name) => format!("f:{name}"),
            Self::Key(fields) => {
                let mut out = String::from("k:{");
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    goformat::write_string(&mut out, name, JsonStyle::JSONITER_RAW);
                    out.push(':');
                    goformat::write_value(&mut out, value, JsonStyle::JSONITER_VALUE);
                }
                out.push('}');
                out
            }
            Self::Value(value) => {
                let mut out = String::from("v:");
                goformat::write_value(&mut out, value, JsonStyle::JSONITER_VALUE);
                out
            }
            Self::Index(i) => format!("i:{i}"),
        }
    }

    /// Parses a `FieldsV1` key. `Ok(None)` is an element of an unknown kind, which upstream
    /// drops (with everything below it) rather than fail.
    pub fn from_fields_v1_key(s: &str) -> Result<Option<Self>, FieldsV1Error> {
        let bytes = s.as_bytes();
        if bytes.len() < 2 {
            return Err(FieldsV1Error::KeyTooShort);
        }
        if bytes[1] != b':' {
            return Err(FieldsV1Error::MissingColon(s.to_string()));
        }
        let rest = s
            .get(2..)
            .ok_or_else(|| FieldsV1Error::MissingColon(s.to_string()))?;
        Ok(Some(match bytes[0] {
            b'f' => Self::Field(rest.to_string()),
            b'v' => Self::Value(numbers_as_floats(parse_json(rest)?)),
            b'k' => match numbers_as_floats(parse_json(rest)?) {
                Value::Object(map) => Self::key(map.into_iter().collect()),
                // json-iterator reads `null` where it expects an object as an empty one.
                Value::Null => Self::Key(Vec::new()),
                other => {
                    return Err(FieldsV1Error::InvalidKey(format!(
                        "expected an object, got {}",
                        goformat::to_json(&other, JsonStyle::JSONITER_VALUE)
                    )));
                }
            },
            b'i' => Self::Index(parse_go_int(rest)?),
            _ => return Ok(None),
        }))
    }
}

/// Parses JSON as json-iterator does for path elements: surrounding white space is fine,
/// trailing data is not.
fn parse_json(s: &str) -> Result<Value, FieldsV1Error> {
    serde_json::from_str(s).map_err(|e| FieldsV1Error::InvalidJson(e.to_string()))
}

/// json-iterator reads every JSON number into a float64.
fn numbers_as_floats(v: Value) -> Value {
    match v {
        Value::Number(n) => n
            .as_f64()
            .and_then(Number::from_f64)
            .map(Value::Number)
            .unwrap_or(Value::Number(n)),
        Value::Array(items) => Value::Array(items.into_iter().map(numbers_as_floats).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, numbers_as_floats(v)))
                .collect(),
        ),
        other => other,
    }
}

/// `strconv.Atoi`: an optional sign and decimal digits.
fn parse_go_int(s: &str) -> Result<i64, FieldsV1Error> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FieldsV1Error::InvalidIndex(format!(
            "strconv.Atoi: parsing {}: invalid syntax",
            goformat::quote(s)
        )));
    }
    s.parse::<i64>().map_err(|_| {
        FieldsV1Error::InvalidIndex(format!(
            "strconv.Atoi: parsing {}: value out of range",
            goformat::quote(s)
        ))
    })
}

impl PartialEq for PathElement {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PathElement {}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Self::Field(a), Self::Field(b)) => a.as_bytes().cmp(b.as_bytes()),
            (Self::Key(a), Self::Key(b)) => compare_field_lists(a, b),
            (Self::Value(a), Self::Value(b)) => compare_values(a, b),
            (Self::Index(a), Self::Index(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl fmt::Display for PathElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Field(name) => write!(f, ".{name}"),
            Self::Key(fields) => {
                f.write_str("[")?;
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{name}={}", value_to_string(value))?;
                }
                f.write_str("]")
            }
            Self::Value(value) => write!(f, "[={}]", value_to_string(value)),
            Self::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A path into an object, as a sequence of elements.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct FieldPath(pub Vec<PathElement>);

impl FieldPath {
    /// A path of field names only, e.g. `FieldPath::fields(&["spec", "replicas"])`.
    pub fn fields(names: &[&str]) -> Self {
        Self(names.iter().map(|n| PathElement::field(*n)).collect())
    }

    /// The elements of the path.
    pub fn elements(&self) -> &[PathElement] {
        &self.0
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for pe in &self.0 {
            write!(f, "{pe}")?;
        }
        Ok(())
    }
}

impl From<Vec<PathElement>> for FieldPath {
    fn from(v: Vec<PathElement>) -> Self {
        Self(v)
    }
}

/// Why a `FieldsV1` document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldsV1Error {
    /// A key shorter than two characters.
    #[error("key must be 2 characters long:")]
    KeyTooShort,
    /// A key whose second character is not `:`.
    #[error("missing colon: {0}")]
    MissingColon(String),
    /// The JSON in a `k:` or `v:` key is malformed.
    #[error("invalid JSON in path element: {0}")]
    InvalidJson(String),
    /// A `k:` key that is not a JSON object.
    #[error("invalid key path element: {0}")]
    InvalidKey(String),
    /// An `i:` key that is not an integer.
    #[error("{0}")]
    InvalidIndex(String),
    /// A node of the trie that is not a JSON object.
    #[error("expected an object for {0}")]
    NotAnObject(String),
}

/// A set of field paths, stored as a trie.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    members: BTreeSet<PathElement>,
    children: BTreeMap<PathElement, FieldSet>,
}

impl FieldSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// A set of the given paths.
    pub fn from_paths<I, P>(paths: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: AsRef<[PathElement]>,
    {
        let mut s = Self::new();
        for p in paths {
            s.insert(p.as_ref());
        }
        s
    }

    /// The elements at this level that are themselves in the set.
    pub fn members(&self) -> impl Iterator<Item = &PathElement> {
        self.members.iter()
    }

    /// The elements at this level that have paths below them, with their subsets.
    pub fn children(&self) -> impl Iterator<Item = (&PathElement, &FieldSet)> {
        self.children.iter()
    }

    /// Whether `pe` is a member at this level.
    pub fn has_member(&self, pe: &PathElement) -> bool {
        self.members.contains(pe)
    }

    /// The subset below `pe`, if any.
    pub fn child(&self, pe: &PathElement) -> Option<&FieldSet> {
        self.children.get(pe)
    }

    /// Adds a path; the empty path is ignored.
    pub fn insert(&mut self, path: &[PathElement]) {
        let Some((last, prefix)) = path.split_last() else {
            return;
        };
        let mut node = self;
        for pe in prefix {
            node = node.children.entry(pe.clone()).or_default();
        }
        node.members.insert(last.clone());
    }

    /// Adds a member at this level.
    pub(crate) fn insert_member(&mut self, pe: PathElement) {
        self.members.insert(pe);
    }

    /// The subset below `pe`, created if missing.
    pub(crate) fn descend(&mut self, pe: PathElement) -> &mut FieldSet {
        self.children.entry(pe).or_default()
    }

    /// Whether the path is in the set.
    pub fn has(&self, path: &[PathElement]) -> bool {
        let Some((last, prefix)) = path.split_last() else {
            return false;
        };
        let mut node = self;
        for pe in prefix {
            match node.children.get(pe) {
                Some(c) => node = c,
                None => return false,
            }
        }
        node.members.contains(last)
    }

    /// Whether the path is in the set (the same as [`FieldSet::has`]).
    pub fn contains(&self, path: &[PathElement]) -> bool {
        self.has(path)
    }

    /// Iterates over the paths, in the order of [`FieldSet::paths`].
    pub fn iter(&self) -> impl Iterator<Item = FieldPath> {
        self.paths().into_iter()
    }

    /// Whether the set has no paths.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.values().all(FieldSet::is_empty)
    }

    /// The number of paths in the set.
    pub fn size(&self) -> usize {
        self.members.len() + self.children.values().map(FieldSet::size).sum::<usize>()
    }

    /// The paths in the set or in `other`.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.union_with(other);
        out
    }

    /// Adds the paths of `other` to this set (an in-place [`FieldSet::union`]: only what
    /// `other` adds is copied).
    pub fn union_with(&mut self, other: &FieldSet) {
        self.members.extend(other.members.iter().cloned());
        for (pe, child) in &other.children {
            match self.children.get_mut(pe) {
                Some(mine) => mine.union_with(child),
                None => {
                    self.children.insert(pe.clone(), child.clone());
                }
            }
        }
    }

    /// The paths in both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.intersection(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, child) in &self.children {
            if let Some(theirs) = other.children.get(pe) {
                let i = child.intersection(theirs);
                if !i.is_empty() {
                    children.insert(pe.clone(), i);
                }
            }
        }
        FieldSet { members, children }
    }

    /// The paths in this set and not in `other`. A member of `other` does not remove the
    /// paths below it (see [`FieldSet::recursive_difference`]).
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.difference(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, child) in &self.children {
            match other.children.get(pe) {
                Some(theirs) => {
                    let d = child.difference(theirs);
                    if !d.is_empty() {
                        children.insert(pe.clone(), d);
                    }
                }
                None => {
                    children.insert(pe.clone(), child.clone());
                }
            }
        }
        FieldSet { members, children }
    }

    /// The paths in this set that neither are in `other` nor lie below a member of it.
    pub fn recursive_difference(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.difference(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, child) in &self.children {
            if other.members.contains(pe) {
                continue;
            }
            match other.children.get(pe) {
                Some(theirs) => {
                    let d = child.recursive_difference(theirs);
                    if !d.is_empty() {
                        children.insert(pe.clone(), d);
                    }
                }
                None => {
                    children.insert(pe.clone(), child.clone());
                }
            }
        }
        FieldSet { members, children }
    }

    /// Removes the paths of `other` from this set (an in-place [`FieldSet::difference`]:
    /// nothing is copied, and subsets left empty are dropped).
    pub fn subtract(&mut self, other: &FieldSet) {
        if !other.members.is_empty() {
            self.members.retain(|m| !other.members.contains(m));
        }
        if other.children.is_empty() {
            return;
        }
        self.children
            .retain(|pe, child| match other.children.get(pe) {
                Some(theirs) => {
                    child.subtract(theirs);
                    !child.is_empty()
                }
                None => true,
            });
    }

    /// Removes the paths of `other` and everything below its members (an in-place
    /// [`FieldSet::recursive_difference`]).
    pub fn recursive_subtract(&mut self, other: &FieldSet) {
        if other.members.is_empty() && other.children.is_empty() {
            return;
        }
        if !other.members.is_empty() {
            self.members.retain(|m| !other.members.contains(m));
        }
        self.children.retain(|pe, child| {
            if other.members.contains(pe) {
                return false;
            }
            match other.children.get(pe) {
                Some(theirs) => {
                    child.recursive_subtract(theirs);
                    !child.is_empty()
                }
                None => true,
            }
        });
    }

    /// The subset below `pe` (empty if none).
    pub fn with_prefix(&self, pe: &PathElement) -> FieldSet {
        self.children.get(pe).cloned().unwrap_or_default()
    }

    /// Every path, in upstream's order: the members of a level, then each child in turn.
    pub fn paths(&self) -> Vec<FieldPath> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<FieldPath>) {
        for m in &self.members {
            let mut p = prefix.clone();
            p.push(m.clone());
            out.push(FieldPath(p));
        }
        for (pe, child) in &self.children {
            prefix.push(pe.clone());
            child.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// The set as a `FieldsV1` JSON value (keys in upstream's order).
    pub fn to_fields_v1(&self) -> Value {
        Value::Object(self.emit(false))
    }

    fn emit(&self, include_self: bool) -> Map<String, Value> {
        let mut out = Map::new();
        if include_self && !(self.members.is_empty() && self.children.is_empty()) {
            out.insert(".".into(), Value::Object(Map::new()));
        }
        let mut members = self.members.iter().peekable();
        let mut children = self.children.iter().peekable();
        loop {
            let next = match (members.peek(), children.peek()) {
                (None, None) => break,
                (Some(_), None) => Some(Ordering::Less),
                (None, Some(_)) => Some(Ordering::Greater),
                (Some(m), Some((c, _))) => Some((*m).cmp(*c)),
            };
            match next {
                Some(Ordering::Less) => {
                    if let Some(m) = members.next() {
                        out.insert(m.to_fields_v1_key(), Value::Object(Map::new()));
                    }
                }
                Some(Ordering::Greater) => {
                    if let Some((pe, child)) = children.next() {
                        out.insert(pe.to_fields_v1_key(), Value::Object(child.emit(false)));
                    }
                }
                _ => {
                    members.next();
                    if let Some((pe, child)) = children.next() {
                        out.insert(pe.to_fields_v1_key(), Value::Object(child.emit(true)));
                    }
                }
            }
        }
        out
    }

    /// The set as upstream's `FieldsV1` bytes (`fieldpath.Set.ToJSON`).
    pub fn to_fields_v1_string(&self) -> String {
        let mut out = String::new();
        write_raw_object(&mut out, &self.to_fields_v1());
        out
    }

    /// Reads a `FieldsV1` JSON value (`fieldpath.Set.FromJSON`).
    pub fn from_fields_v1(v: &Value) -> Result<FieldSet, FieldsV1Error> {
        match v {
            Value::Null => Ok(FieldSet::new()),
            Value::Object(map) => Ok(read_level(map)?.0.unwrap_or_default()),
            _ => Err(FieldsV1Error::NotAnObject("the fields".into())),
        }
    }

    /// Reads `FieldsV1` bytes.
    pub fn from_fields_v1_str(s: &str) -> Result<FieldSet, FieldsV1Error> {
        let v: Value =
            serde_json::from_str(s).map_err(|e| FieldsV1Error::InvalidJson(e.to_string()))?;
        Self::from_fields_v1(&v)
    }
}

/// Writes a `FieldsV1` object the way json-iterator's stream does: keys escaped without
/// HTML escaping, no white space.
fn write_raw_object(out: &mut String, v: &Value) {
    match v {
        Value::Object(map) => {
            out.push('{');
            for (i, (k, child)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                goformat::write_string(out, k, JsonStyle::JSONITER_RAW);
                out.push(':');
                write_raw_object(out, child);
            }
            out.push('}');
        }
        other => goformat::write_value(out, other, JsonStyle::JSONITER_VALUE),
    }
}

/// One level of `readIterV1`: the subset below (if any) and whether the node is a member.
fn read_level(map: &Map<String, Value>) -> Result<(Option<FieldSet>, bool), FieldsV1Error> {
    let mut children: Option<FieldSet> = None;
    let mut is_member = false;
    for (key, value) in map {
        if key == "." {
            is_member = true;
            continue;
        }
        let Some(pe) = PathElement::from_fields_v1_key(key)? else {
            continue;
        };
        let (grandchildren, child_is_member) = match value {
            Value::Object(m) => read_level(m)?,
            // json-iterator reads `null` as an empty object.
            Value::Null => (None, true),
            _ => return Err(FieldsV1Error::NotAnObject(key.clone())),
        };
        if child_is_member {
            children
                .get_or_insert_with(FieldSet::new)
                .members
                .insert(pe.clone());
        }
        if let Some(g) = grandchildren {
            children
                .get_or_insert_with(FieldSet::new)
                .children
                .insert(pe, g);
        }
    }
    if children.is_none() {
        is_member = true;
    }
    Ok((children, is_member))
}

/// A number as structured-merge-diff sees it: an int64 or a float64.
#[derive(Clone, Copy)]
enum Num {
    Int(i64),
    Float(f64),
}

fn num(n: &Number) -> Num {
    if let Some(i) = n.as_i64() {
        Num::Int(i)
    } else {
        Num::Float(n.as_f64().unwrap_or(0.0))
    }
}

fn float_cmp(a: f64, b: f64) -> Ordering {
    if a > b {
        Ordering::Greater
    } else if a < b {
        Ordering::Less
    } else {
        Ordering::Equal
    }
}

fn type_rank(v: &Value) -> u8 {
    match v {
        Value::Number(_) => 0,
        Value::String(_) => 1,
        Value::Bool(_) => 2,
        Value::Array(_) => 3,
        Value::Object(_) => 4,
        Value::Null => 5,
    }
}

/// The total order of values of structured-merge-diff's `value.Compare`: numbers (ints and
/// floats compared numerically), then strings, booleans, lists, maps and null.
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (num(x), num(y)) {
            (Num::Int(i), Num::Int(j)) => i.cmp(&j),
            (Num::Int(i), Num::Float(g)) => float_cmp(i as f64, g),
            (Num::Float(f), Num::Int(j)) => float_cmp(f, j as f64),
            (Num::Float(f), Num::Float(g)) => float_cmp(f, g),
        },
        (Value::String(x), Value::String(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (l, r) in x.iter().zip(y) {
                let c = compare_values(l, r);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => compare_maps(x, y),
        (Value::Null, Value::Null) => Ordering::Equal,
        _ => type_rank(a).cmp(&type_rank(b)),
    }
}

/// `value.MapCompare`: keys in lexical order, a missing key sorting after a present one.
fn compare_maps(x: &Map<String, Value>, y: &Map<String, Value>) -> Ordering {
    if x.is_empty() && y.is_empty() {
        return Ordering::Equal;
    }
    let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
    keys.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    keys.dedup();
    for (i, k) in keys.into_iter().enumerate() {
        let c = if i == x.len() {
            Ordering::Less
        } else if i == y.len() {
            Ordering::Greater
        } else {
            match (x.get(k), y.get(k)) {
                (None, _) => Ordering::Greater,
                (_, None) => Ordering::Less,
                (Some(l), Some(r)) => compare_values(l, r),
            }
        };
        if c != Ordering::Equal {
            return c;
        }
    }
    Ordering::Equal
}

fn compare_field_lists(a: &[(String, Value)], b: &[(String, Value)]) -> Ordering {
    for ((an, av), (bn, bv)) in a.iter().zip(b) {
        let c = an
            .as_bytes()
            .cmp(bn.as_bytes())
            .then_with(|| compare_values(av, bv));
        if c != Ordering::Equal {
            return c;
        }
    }
    a.len().cmp(&b.len())
}

/// Value equality of structured-merge-diff's `value.Equals`: numbers numerically, maps
/// regardless of key order.
pub fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (num(x), num(y)) {
            (Num::Int(i), Num::Int(j)) => i == j,
            (Num::Int(i), Num::Float(g)) => i as f64 == g,
            (Num::Float(f), Num::Int(j)) => f == j as f64,
            (Num::Float(f), Num::Float(g)) => f == g,
        },
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Null, Value::Null) => true,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(l, r)| values_equal(l, r))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, l)| y.get(k).is_some_and(|r| values_equal(l, r)))
        }
        _ => false,
    }
}

/// `value.ToString`: how a value appears in a path string.
pub fn value_to_string(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Number(n) => match num(n) {
            Num::Int(i) => i.to_string(),
            Num::Float(f) => goformat::float_v(f),
        },
        Value::String(s) => goformat::quote(s),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(value_to_string).collect();
            format!("[{}]", parts.join(","))
        }
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{k}={}", value_to_string(v)))
            .collect(),
    }
}
