//! Label selectors (`k8s.io/apimachinery/pkg/labels`): parsing the `?labelSelector=`
//! string form, converting a `metav1.LabelSelector`, matching and canonical printing.
//!
//! The grammar, the validation of keys and values and every error text follow upstream,
//! because kubectl shows the server's message as-is (`unable to parse requirement: …`).

use crate::field::{self, ErrorList, FieldError, Path};
use crate::goformat;
use crate::validation::{is_qualified_name, is_valid_label_value};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::fmt;

// === LabelSource ===

/// Something labels can be looked up in.
pub trait LabelSource {
    /// The value of label `key`, if the label is set.
    fn label(&self, key: &str) -> Option<&str>;
}

impl LabelSource for BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl<S: std::hash::BuildHasher> LabelSource for HashMap<String, String, S> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

/// A JSON `metadata.labels` object; members whose value is not a string are ignored.
impl LabelSource for Map<String, Value> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }
}

impl<T: LabelSource + ?Sized> LabelSource for &T {
    fn label(&self, key: &str) -> Option<&str> {
        (**self).label(key)
    }
}

// === Operator and Requirement ===

/// How a requirement relates a key to its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `key`: the label is set.
    Exists,
    /// `!key`: the label is not set.
    DoesNotExist,
    /// `key=value`.
    Equals,
    /// `key==value`.
    DoubleEquals,
    /// `key!=value` (also true when the label is not set).
    NotEquals,
    /// `key in (a,b)`.
    In,
    /// `key notin (a,b)` (also true when the label is not set).
    NotIn,
    /// `key>5`: the label is an integer greater than the value.
    GreaterThan,
    /// `key<5`: the label is an integer less than the value.
    LessThan,
}

/// One term of a selector: a key, an operator and its values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

impl Requirement {
    /// Builds and validates a requirement like upstream's `labels.NewRequirement`; the
    /// error is the aggregated field errors (paths relative to `key` / `values`).
    pub fn new(
        key: &str,
        operator: Operator,
        values: Vec<String>,
    ) -> Result<Requirement, ErrorList> {
        let path = Path::root();
        let mut errs = ErrorList::new();
        if let Some(e) = validate_label_key(key, &path.child("key")) {
            errs.push(e);
        }
        let value_path = path.child("values");
        // Upstream passes a nil slice when there are no values, which renders as `null`.
        let values_json = || {
            if values.is_empty() {
                Value::Null
            } else {
                Value::from(values.clone())
            }
        };
        match operator {
            Operator::In | Operator::NotIn => {
                if values.is_empty() {
                    errs.push(FieldError::invalid(
                        &value_path,
                        values_json(),
                        "for 'in', 'notin' operators, values set can't be empty",
                    ));
                }
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals => {
                if values.len() != 1 {
                    errs.push(FieldError::invalid(
                        &value_path,
                        values_json(),
                        "exact-match compatibility requires one single value",
                    ));
                }
            }
            Operator::Exists | Operator::DoesNotExist => {
                if !values.is_empty() {
                    errs.push(FieldError::invalid(
                        &value_path,
                        values_json(),
                        "values set must be empty for exists and does not exist",
                    ));
                }
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errs.push(FieldError::invalid(
                        &value_path,
                        values_json(),
                        "for 'Gt', 'Lt' operators, exactly one value is required",
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errs.push(FieldError::invalid(
                            &value_path.index(i),
                            v.as_str(),
                            "for 'Gt', 'Lt' operators, the value must be an integer",
                        ));
                    }
                }
            }
        }
        for (i, v) in values.iter().enumerate() {
            let msgs = is_valid_label_value(v);
            if !msgs.is_empty() {
                errs.push(FieldError::invalid(
                    &value_path.index(i).key(key),
                    v.as_str(),
                    msgs.join("; "),
                ));
            }
        }
        if errs.is_empty() {
            Ok(Requirement {
                key: key.to_string(),
                operator,
                values,
            })
        } else {
            Err(errs)
        }
    }

    /// The label key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The operator.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values, as given (parsed selectors hold them sorted and deduplicated).
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether `labels` satisfy this requirement.
    pub fn matches<L: LabelSource + ?Sized>(&self, labels: &L) -> bool {
        let has_value = |v: &str| self.values.iter().any(|x| x == v);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                labels.label(&self.key).is_some_and(has_value)
            }
            Operator::NotIn | Operator::NotEquals => {
                !labels.label(&self.key).is_some_and(has_value)
            }
            Operator::Exists => labels.label(&self.key).is_some(),
            Operator::DoesNotExist => labels.label(&self.key).is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(actual) = labels.label(&self.key).and_then(|v| v.parse::<i64>().ok())
                else {
                    return false;
                };
                let [wanted] = self.values.as_slice() else {
                    return false;
                };
                let Ok(wanted) = wanted.parse::<i64>() else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    actual > wanted
                } else {
                    actual < wanted
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let op = match self.operator {
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => " in ",
            Operator::NotIn => " notin ",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
        };
        f.write_str(op)?;
        let set = matches!(self.operator, Operator::In | Operator::NotIn);
        if set {
            f.write_str("(")?;
        }
        let mut values: Vec<&str> = self.values.iter().map(String::as_str).collect();
        values.sort_unstable();
        f.write_str(&values.join(","))?;
        if set {
            f.write_str(")")?;
        }
        Ok(())
    }
}

fn validate_label_key(key: &str, path: &Path) -> Option<FieldError> {
    let msgs = is_qualified_name(key);
    (!msgs.is_empty()).then(|| FieldError::invalid(path, key, msgs.join("; ")))
}

// === Selector ===

/// A parsed label selector: the AND of its requirements, or the selector that matches
/// nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
    nothing: bool,
}

/// Why a label selector could not be parsed or converted. `Display` is upstream's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The string form is malformed (`found 'x', expected: …`).
    #[error("{0}")]
    Syntax(String),
    /// A requirement in the string form is invalid (`unable to parse requirement: …`).
    #[error("unable to parse requirement: {0}")]
    Requirement(String),
    /// A `metav1.LabelSelector` holds an invalid requirement (the aggregated field errors).
    #[error("{0}")]
    InvalidLabelSelector(String),
    /// A `matchExpressions` operator is not In, NotIn, Exists or DoesNotExist.
    #[error("{} is not a valid label selector operator", goformat::quote(.0))]
    UnknownOperator(String),
    /// The `metav1.LabelSelector` JSON does not have the expected shape.
    #[error("invalid label selector: {0}")]
    Malformed(String),
}

impl Selector {
    /// The selector that matches every object (also what an empty string parses to).
    pub fn everything() -> Selector {
        Selector {
            requirements: Vec::new(),
            nothing: false,
        }
    }

    /// The selector that matches no object (a null `metav1.LabelSelector`).
    pub fn nothing() -> Selector {
        Selector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// Parses the string form: `a=b,c!=d,e in (f,g),!h,i>3`.
    pub fn parse(s: &str) -> Result<Selector, SelectorError> {
        let mut requirements = Parser::new(s).parse()?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Selector {
            requirements,
            nothing: false,
        })
    }

    /// A selector requiring every label in `set` (`key=value` each); an empty set gives
    /// [`Selector::everything`]. Keys and values are not validated, like upstream's
    /// `SelectorFromSet`.
    pub fn from_set(set: &BTreeMap<String, String>) -> Selector {
        let requirements = set
            .iter()
            .map(|(k, v)| Requirement {
                key: k.clone(),
                operator: Operator::Equals,
                values: vec![v.clone()],
            })
            .collect();
        Selector {
            requirements,
            nothing: false,
        }
    }

    /// Converts a `metav1.LabelSelector` given as JSON (`matchLabels`, `matchExpressions`)
    /// like upstream's `LabelSelectorAsSelector`: `null` matches nothing, `{}` matches
    /// everything.
    pub fn from_label_selector(selector: &Value) -> Result<Selector, SelectorError> {
        let obj = match selector {
            Value::Null => return Ok(Selector::nothing()),
            Value::Object(obj) => obj,
            _ => return Err(SelectorError::Malformed("expected an object".to_string())),
        };
        let match_labels = match obj.get("matchLabels") {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m),
            Some(_) => {
                return Err(SelectorError::Malformed(
                    "matchLabels must be an object".to_string(),
                ));
            }
        };
        let expressions = match obj.get("matchExpressions") {
            None | Some(Value::Null) => &[][..],
            Some(Value::Array(a)) => a.as_slice(),
            Some(_) => {
                return Err(SelectorError::Malformed(
                    "matchExpressions must be a list".to_string(),
                ));
            }
        };
        if match_labels.is_none_or(Map::is_empty) && expressions.is_empty() {
            return Ok(Selector::everything());
        }
        let invalid = |errs: ErrorList| {
            SelectorError::InvalidLabelSelector(field::aggregate(&errs).unwrap_or_default())
        };
        let mut requirements = Vec::new();
        // Upstream walks a Go map here (random order); sorted keys make the first error
        // reported deterministic.
        let mut labels: Vec<(&String, &Value)> =
            match_labels.map(|m| m.iter().collect()).unwrap_or_default();
        labels.sort_by(|a, b| a.0.cmp(b.0));
        for (k, v) in labels {
            let v = v.as_str().ok_or_else(|| {
                SelectorError::Malformed(format!("matchLabels[{k}] must be a string"))
            })?;
            requirements
                .push(Requirement::new(k, Operator::Equals, vec![v.to_string()]).map_err(invalid)?);
        }
        for expr in expressions {
            let key = expr.get("key").and_then(Value::as_str).unwrap_or_default();
            let op_name = expr
                .get("operator")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let operator = match op_name {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => return Err(SelectorError::UnknownOperator(other.to_string())),
            };
            let values = match expr.get("values") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(vs)) => vs
                    .iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        SelectorError::Malformed("values must be strings".to_string())
                    })?,
                Some(_) => {
                    return Err(SelectorError::Malformed(
                        "values must be a list".to_string(),
                    ));
                }
            };
            requirements.push(Requirement::new(key, operator, values).map_err(invalid)?);
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Selector {
            requirements,
            nothing: false,
        })
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches<L: LabelSource + ?Sized>(&self, labels: &L) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Whether the labels at `metadata.labels` of a JSON object satisfy the selector (an
    /// object without labels has none).
    pub fn matches_object(&self, object: &Value) -> bool {
        match object
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
        {
            Some(labels) => self.matches(labels),
            None => self.matches(&Map::new()),
        }
    }

    /// Whether the selector places no restriction (matches everything).
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// Whether this is the selector that matches nothing.
    pub fn matches_nothing(&self) -> bool {
        self.nothing
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// The single value `label` must have, when the selector requires one (`=`, `==`, or
    /// `in` with one value on the first requirement for that key).
    pub fn requires_exact_match(&self, label: &str) -> Option<&str> {
        let r = self.requirements.iter().find(|r| r.key == label)?;
        match (r.operator, r.values.as_slice()) {
            (Operator::Equals | Operator::DoubleEquals | Operator::In, [v]) => Some(v),
            _ => None,
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Selector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Selector::parse(s)
    }
}

// === lexer ===

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn keyword(s: &[u8]) -> Option<Token> {
    Some(match s {
        b")" => Token::ClosedPar,
        b"," => Token::Comma,
        b"!" => Token::DoesNotExist,
        b"==" => Token::DoubleEquals,
        b"=" => Token::Equals,
        b">" => Token::GreaterThan,
        b"in" => Token::In,
        b"<" => Token::LessThan,
        b"!=" => Token::NotEquals,
        b"notin" => Token::NotIn,
        b"(" => Token::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(c: u8) -> bool {
    matches!(c, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// Splits the input into tokens; operators are the longest special-symbol run that forms
/// a token, identifiers run up to whitespace or a special symbol.
fn lex(s: &str) -> Vec<(Token, String)> {
    let b = s.as_bytes();
    let mut pos = 0;
    let mut out = Vec::new();
    loop {
        while pos < b.len() && is_whitespace(b[pos]) {
            pos += 1;
        }
        if pos >= b.len() {
            out.push((Token::EndOfString, String::new()));
            return out;
        }
        let start = pos;
        if is_special(b[pos]) {
            // Every single special symbol is a token, so this always finds one.
            let mut best = (Token::EndOfString, pos);
            while pos < b.len() && is_special(b[pos]) {
                match keyword(&b[start..=pos]) {
                    Some(tok) => best = (tok, pos + 1),
                    None => break,
                }
                pos += 1;
            }
            pos = best.1;
            out.push((best.0, s[start..pos].to_string()));
        } else {
            while pos < b.len() && !is_special(b[pos]) && !is_whitespace(b[pos]) {
                pos += 1;
            }
            let lit = &s[start..pos];
            let tok = keyword(lit.as_bytes()).unwrap_or(Token::Identifier);
            out.push((tok, lit.to_string()));
        }
    }
}

// === parser ===

/// Whether `in` / `notin` count as keywords (after a key) or as plain identifiers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

struct Parser {
    items: Vec<(Token, String)>,
    position: usize,
}

impl Parser {
    fn new(s: &str) -> Parser {
        Parser {
            items: lex(s),
            position: 0,
        }
    }

    fn item(&self, index: usize, ctx: Context) -> (Token, String) {
        let (tok, lit) = self
            .items
            .get(index)
            .cloned()
            .unwrap_or((Token::EndOfString, String::new()));
        match (ctx, tok) {
            (Context::Values, Token::In | Token::NotIn) => (Token::Identifier, lit),
            _ => (tok, lit),
        }
    }

    fn lookahead(&self, ctx: Context) -> (Token, String) {
        self.item(self.position, ctx)
    }

    fn consume(&mut self, ctx: Context) -> (Token, String) {
        let it = self.item(self.position, ctx);
        self.position += 1;
        it
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, SelectorError> {
        let mut requirements = Vec::new();
        loop {
            let (tok, lit) = self.lookahead(Context::Values);
            match tok {
                Token::Identifier | Token::DoesNotExist => {
                    requirements.push(self.parse_requirement()?);
                    let (t, l) = self.consume(Context::Values);
                    match t {
                        Token::EndOfString => return Ok(requirements),
                        Token::Comma => {
                            let (t2, l2) = self.lookahead(Context::Values);
                            if t2 != Token::Identifier && t2 != Token::DoesNotExist {
                                return Err(syntax(format!(
                                    "found '{l2}', expected: identifier after ','"
                                )));
                            }
                        }
                        _ => {
                            return Err(syntax(format!(
                                "found '{l}', expected: ',' or 'end of string'"
                            )));
                        }
                    }
                }
                Token::EndOfString => return Ok(requirements),
                _ => {
                    return Err(syntax(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    )));
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, SelectorError> {
        let (key, inferred) = self.parse_key_and_infer_operator()?;
        if let Some(op) = inferred {
            return new_parsed_requirement(&key, op, Vec::new());
        }
        let operator = self.parse_operator()?;
        let values = match operator {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        new_parsed_requirement(&key, operator, values)
    }

    /// Reads `[!]key`; returns the unary operator when no binary operator follows.
    fn parse_key_and_infer_operator(
        &mut self,
    ) -> Result<(String, Option<Operator>), SelectorError> {
        let (mut tok, mut lit) = self.consume(Context::Values);
        let negated = tok == Token::DoesNotExist;
        if negated {
            (tok, lit) = self.consume(Context::Values);
        }
        if tok != Token::Identifier {
            return Err(requirement_error(format!(
                "found '{lit}', expected: identifier"
            )));
        }
        if let Some(e) = validate_label_key(&lit, &Path::root()) {
            return Err(requirement_error(e.to_string()));
        }
        let (next, _) = self.lookahead(Context::Values);
        let op = if negated {
            Some(Operator::DoesNotExist)
        } else if next == Token::EndOfString || next == Token::Comma {
            Some(Operator::Exists)
        } else {
            None
        };
        Ok((lit, op))
    }

    fn parse_operator(&mut self) -> Result<Operator, SelectorError> {
        let (tok, lit) = self.consume(Context::KeyAndOperator);
        Ok(match tok {
            Token::In => Operator::In,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            _ => {
                return Err(requirement_error(format!(
                    "found '{lit}', expected: in, notin, =, ==, !=, gt, lt"
                )));
            }
        })
    }

    /// Reads `(a,b,…)`; empty members stand for the empty value.
    fn parse_values(&mut self) -> Result<Vec<String>, SelectorError> {
        let (tok, lit) = self.consume(Context::Values);
        if tok != Token::OpenPar {
            return Err(requirement_error(format!("found '{lit}' expected: '('")));
        }
        let (tok, lit) = self.lookahead(Context::Values);
        match tok {
            Token::Identifier | Token::Comma => {
                let values = self.parse_identifiers_list()?;
                let (tok, _) = self.consume(Context::Values);
                if tok != Token::ClosedPar {
                    return Err(requirement_error(format!("found '{lit}', expected: ')'")));
                }
                Ok(values)
            }
            Token::ClosedPar => {
                self.consume(Context::Values);
                Ok(vec![String::new()])
            }
            _ => Err(requirement_error(format!(
                "found '{lit}', expected: ',', ')' or identifier"
            ))),
        }
    }

    fn parse_identifiers_list(&mut self) -> Result<Vec<String>, SelectorError> {
        let mut set = std::collections::BTreeSet::new();
        loop {
            let (tok, lit) = self.consume(Context::Values);
            match tok {
                Token::Identifier => {
                    set.insert(lit);
                    let (tok2, lit2) = self.lookahead(Context::Values);
                    match tok2 {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(set.into_iter().collect()),
                        _ => {
                            return Err(requirement_error(format!(
                                "found '{lit2}', expected: ',' or ')'"
                            )));
                        }
                    }
                }
                Token::Comma => {
                    // "(," ",)" and ",," each stand for an empty value.
                    if set.is_empty() {
                        set.insert(String::new());
                    }
                    let (tok2, _) = self.lookahead(Context::Values);
                    if tok2 == Token::ClosedPar {
                        set.insert(String::new());
                        return Ok(set.into_iter().collect());
                    }
                    if tok2 == Token::Comma {
                        set.insert(String::new());
                    }
                }
                _ => {
                    return Err(requirement_error(format!(
                        "found '{lit}', expected: ',', or identifier"
                    )));
                }
            }
        }
    }

    fn parse_exact_value(&mut self) -> Result<Vec<String>, SelectorError> {
        let (tok, _) = self.lookahead(Context::Values);
        if tok == Token::EndOfString || tok == Token::Comma {
            return Ok(vec![String::new()]);
        }
        let (tok, lit) = self.consume(Context::Values);
        if tok == Token::Identifier {
            return Ok(vec![lit]);
        }
        Err(requirement_error(format!(
            "found '{lit}', expected: identifier"
        )))
    }
}

fn syntax(msg: String) -> SelectorError {
    SelectorError::Syntax(msg)
}

fn requirement_error(msg: String) -> SelectorError {
    SelectorError::Requirement(msg)
}

fn new_parsed_requirement(
    key: &str,
    op: Operator,
    values: Vec<String>,
) -> Result<Requirement, SelectorError> {
    Requirement::new(key, op, values)
        .map_err(|errs| requirement_error(field::aggregate(&errs).unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn err(s: &str) -> String {
        Selector::parse(s).unwrap_err().to_string()
    }

    #[test]
    fn parses_every_operator_and_prints_canonically_sorted_by_key() {
        let s = Selector::parse("z=1, y==2,x!=3,w in (b,a),v notin (c),!u,t,s>5,r<7").unwrap();
        assert_eq!(
            s.to_string(),
            "r<7,s>5,t,!u,v notin (c),w in (a,b),x!=3,y==2,z=1"
        );
        assert_eq!(s.requirements().len(), 9);
    }

    #[test]
    fn empty_string_parses_to_everything() {
        let s = Selector::parse("").unwrap();
        assert!(s.is_empty());
        assert!(s.matches(&labels(&[])));
        assert_eq!(Selector::parse("   ").unwrap(), Selector::everything());
    }

    #[test]
    fn whitespace_is_tolerated_around_tokens() {
        let s = Selector::parse(" a = b ,  c  in ( d , e ) ").unwrap();
        assert_eq!(s.to_string(), "a=b,c in (d,e)");
    }

    #[test]
    fn equality_matches_and_inequality_matches_missing_keys() {
        let s = Selector::parse("app=web,tier!=db").unwrap();
        assert!(s.matches(&labels(&[("app", "web")])));
        assert!(s.matches(&labels(&[("app", "web"), ("tier", "fe")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "db")])));
        assert!(!s.matches(&labels(&[("app", "api")])));
    }

    #[test]
    fn set_operators_and_existence_match_like_upstream() {
        let s = Selector::parse("env in (prod,qa),!legacy,team").unwrap();
        assert!(s.matches(&labels(&[("env", "qa"), ("team", "x")])));
        assert!(!s.matches(&labels(&[("env", "dev"), ("team", "x")])));
        assert!(!s.matches(&labels(&[("env", "qa"), ("team", "x"), ("legacy", "")])));
        assert!(!s.matches(&labels(&[("env", "qa")])));
        let s = Selector::parse("env notin (prod)").unwrap();
        assert!(s.matches(&labels(&[])));
        assert!(!s.matches(&labels(&[("env", "prod")])));
    }

    #[test]
    fn greater_and_less_than_compare_integers_only() {
        let s = Selector::parse("gen>5").unwrap();
        assert!(s.matches(&labels(&[("gen", "6")])));
        assert!(!s.matches(&labels(&[("gen", "5")])));
        assert!(!s.matches(&labels(&[("gen", "x")])));
        assert!(!s.matches(&labels(&[])));
        assert!(
            Selector::parse("gen<5")
                .unwrap()
                .matches(&labels(&[("gen", "-1")]))
        );
    }

    #[test]
    fn json_label_maps_are_label_sources() {
        let obj = json!({"metadata": {"labels": {"app": "web"}}});
        let s = Selector::parse("app=web").unwrap();
        assert!(s.matches(obj["metadata"]["labels"].as_object().unwrap()));
        assert!(s.matches_object(&obj));
        assert!(!s.matches_object(&json!({"metadata": {}})));
        assert!(Selector::parse("!app").unwrap().matches_object(&json!({})));
    }

    #[test]
    fn in_keyword_is_an_identifier_in_value_position() {
        let s = Selector::parse("x in (in,notin)").unwrap();
        assert!(s.matches(&labels(&[("x", "notin")])));
        assert_eq!(Selector::parse("in=in").unwrap().to_string(), "in=in");
    }

    #[test]
    fn empty_values_are_allowed_in_sets_and_exact_matches() {
        assert_eq!(
            Selector::parse("x in (foo,,baz),y,z notin ()")
                .unwrap()
                .to_string(),
            "x in (,baz,foo),y,z notin ()"
        );
        let s = Selector::parse("a=").unwrap();
        assert!(s.matches(&labels(&[("a", "")])));
        assert_eq!(s.to_string(), "a=");
    }

    #[test]
    fn invalid_key_is_reported_with_nil_path_like_upstream() {
        assert_eq!(
            err("a_b/c=d"),
            "unable to parse requirement: <nil>: Invalid value: \"a_b/c\": prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        );
    }

    #[test]
    fn invalid_value_is_reported_at_values_index_key() {
        assert_eq!(err("a=b c"), "found 'c', expected: ',' or 'end of string'");
        assert_eq!(
            err("a=-b"),
            "unable to parse requirement: values[0][a]: Invalid value: \"-b\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        );
    }

    #[test]
    fn syntax_errors_use_upstream_texts() {
        assert_eq!(
            err("a in"),
            "unable to parse requirement: found '' expected: '('"
        );
        assert_eq!(
            err("a in (b"),
            "unable to parse requirement: found '', expected: ',' or ')'"
        );
        assert_eq!(
            err("a in (b c)"),
            "unable to parse requirement: found 'c', expected: ',' or ')'"
        );
        assert_eq!(
            err("a in (=)"),
            "unable to parse requirement: found '=', expected: ',', ')' or identifier"
        );
        assert_eq!(err("a,"), "found '', expected: identifier after ','");
        assert_eq!(
            err(",a"),
            "found ',', expected: !, identifier, or 'end of string'"
        );
        assert_eq!(
            err("a b"),
            "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"
        );
        assert_eq!(
            err("!=a"),
            "found '!=', expected: !, identifier, or 'end of string'"
        );
        assert_eq!(
            err("!!a"),
            "unable to parse requirement: found '!', expected: identifier"
        );
        assert_eq!(
            err("a=("),
            "unable to parse requirement: found '(', expected: identifier"
        );
        assert_eq!(
            err("a)"),
            "unable to parse requirement: found ')', expected: in, notin, =, ==, !=, gt, lt"
        );
    }

    #[test]
    fn greater_than_needs_an_integer() {
        assert_eq!(
            err("a>b"),
            "unable to parse requirement: values[0]: Invalid value: \"b\": for 'Gt', 'Lt' operators, the value must be an integer"
        );
    }

    #[test]
    fn label_selector_json_empty_matches_everything_and_null_nothing() {
        let all = Selector::from_label_selector(&json!({})).unwrap();
        assert!(all.is_empty());
        assert!(all.matches(&labels(&[])));
        let none = Selector::from_label_selector(&Value::Null).unwrap();
        assert!(!none.is_empty());
        assert!(none.matches_nothing());
        assert!(!none.matches(&labels(&[])));
        assert_eq!(none.to_string(), "");
    }

    #[test]
    fn label_selector_json_combines_labels_and_expressions() {
        let s = Selector::from_label_selector(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["qa", "prod"]},
                {"key": "legacy", "operator": "DoesNotExist"}
            ]
        }))
        .unwrap();
        assert_eq!(s.to_string(), "app=web,env in (prod,qa),!legacy");
        assert!(s.matches(&labels(&[("app", "web"), ("env", "prod")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("env", "dev")])));
    }

    #[test]
    fn label_selector_json_reports_upstream_errors() {
        let e = Selector::from_label_selector(
            &json!({"matchExpressions": [{"key": "a", "operator": "Foo"}]}),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"Foo\" is not a valid label selector operator"
        );
        let e = Selector::from_label_selector(
            &json!({"matchExpressions": [{"key": "a", "operator": "In"}]}),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty"
        );
        let e = Selector::from_label_selector(
            &json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "values: Invalid value: [\"x\"]: values set must be empty for exists and does not exist"
        );
        let e = Selector::from_label_selector(&json!({"matchLabels": {"-a": "x y"}})).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("[key: Invalid value: \"-a\": name part must consist"),
            "{e}"
        );
        assert!(
            e.to_string()
                .contains(", values[0][-a]: Invalid value: \"x y\": a valid label"),
            "{e}"
        );
    }

    #[test]
    fn exact_match_is_reported_for_equals_and_single_in() {
        let s = Selector::parse("a=1,b in (2),c in (3,4),d!=5").unwrap();
        assert_eq!(s.requires_exact_match("a"), Some("1"));
        assert_eq!(s.requires_exact_match("b"), Some("2"));
        assert_eq!(s.requires_exact_match("c"), None);
        assert_eq!(s.requires_exact_match("d"), None);
        assert_eq!(s.requires_exact_match("e"), None);
    }

    #[test]
    fn from_set_requires_every_label() {
        let s = Selector::from_set(&labels(&[("b", "2"), ("a", "1")]));
        assert_eq!(s.to_string(), "a=1,b=2");
        assert!(s.matches(&labels(&[("a", "1"), ("b", "2"), ("c", "3")])));
        assert!(!s.matches(&labels(&[("a", "1")])));
        assert!(Selector::from_set(&BTreeMap::new()).is_empty());
    }

    #[test]
    fn upstream_good_and_bad_selector_strings() {
        // From upstream's TestSelectorParse and TestSetSelectorParser.
        for good in [
            "x=a,y=b,z=c",
            "",
            "x!=a,y=b",
            "x=",
            "x= ",
            "x=,z= ",
            "x= ,z= ",
            "!x",
            "x>1",
            "x>1,z<5",
        ] {
            assert_eq!(
                Selector::parse(good).unwrap().to_string(),
                good.replace(' ', ""),
                "{good}"
            );
        }
        for (input, out) in [
            ("\rx", "x"),
            (
                "0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)",
                "0.1.2.domain/99 notin (10.10.100.1,tick.tack.clock)",
            ),
            ("foo  in\t (abc)", "foo in (abc)"),
            ("x notin\n (abc)", "x notin (abc)"),
            ("x in (abc,)", "x in (,abc)"),
            ("x in (abc,abc)", "x in (abc)"),
            ("x in (a,,,,,,)", "x in (,a)"),
            ("x in (a,,a,,a,,a,,)", "x in (,a)"),
            (
                "x notin (abc,,def),bar,z in (),w",
                "bar,w,x notin (,abc,def),z in ()",
            ),
            ("x,y in (a)", "x,y in (a)"),
            ("x notin ( )", "x notin ()"),
            ("x notin (, a)", "x notin (,a)"),
            ("a ", "a"),
            ("a in (x,y,notin, z,in)", "a in (in,notin,x,y,z)"),
        ] {
            assert_eq!(
                Selector::parse(input).unwrap().to_string(),
                out,
                "{input:?}"
            );
        }
        for bad in [
            "x=a||y=b",
            "x==a==b",
            "!x=a",
            "x<a",
            "x,,y",
            ",x,y",
            "x nott in (y)",
            "a in (xyz),",
            "a in (xyz)b notin ()",
            "a in (xyz abc)",
            "a notin(",
            "a (",
            "(",
        ] {
            assert!(Selector::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn multiple_operators_glued_are_split_greedily() {
        // "a==b" is DoubleEquals; "a===b" lexes "==" then "=" and fails on the value.
        assert_eq!(Selector::parse("a==b").unwrap().to_string(), "a==b");
        assert_eq!(
            err("a===b"),
            "unable to parse requirement: found '=', expected: identifier"
        );
        assert_eq!(
            Selector::parse("a!=b").unwrap().requirements()[0].operator(),
            Operator::NotEquals
        );
    }
}
