//! Field selectors (`k8s.io/apimachinery/pkg/fields`): `?fieldSelector=a=b,c!=d`.
//!
//! Only `=`, `==` and `!=` exist; values escape `\`, `,` and `=` with a backslash. A field
//! the object does not have compares as the empty string, like upstream's `fields.Set`.
//! Which fields a resource supports is the caller's business: inspect
//! [`FieldSelector::requirements`] and reject the rest.

use std::fmt;

/// How a field is compared with its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldOperator {
    /// `field=value` or `field==value`.
    Equals,
    /// `field!=value`.
    NotEquals,
}

/// One term of a field selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    /// The field path, e.g. `metadata.name` or `status.phase`.
    pub field: String,
    /// The comparison.
    pub operator: FieldOperator,
    /// The (unescaped) value compared against.
    pub value: String,
}

impl FieldRequirement {
    fn matches(&self, actual: Option<String>) -> bool {
        let actual = actual.unwrap_or_default();
        match self.operator {
            FieldOperator::Equals => actual == self.value,
            FieldOperator::NotEquals => actual != self.value,
        }
    }
}

impl fmt::Display for FieldRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.operator {
            FieldOperator::Equals => "=",
            FieldOperator::NotEquals => "!=",
        };
        write!(f, "{}{op}{}", self.field, escape_value(&self.value))
    }
}

/// Why a field selector could not be parsed; `Display` is upstream's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldSelectorError {
    /// A term has no `=`, `==` or `!=`.
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    InvalidTerm {
        /// The whole selector string.
        selector: String,
        /// The term that could not be split.
        term: String,
    },
    /// A backslash is followed by something other than `\`, `,` or `=` (or by nothing).
    #[error("invalid field selector: invalid escape sequence: {0}")]
    InvalidEscape(String),
    /// A `,` or `=` appears unescaped in a value; upstream prints the code point as a number.
    #[error("invalid field selector: unescaped character in value: {}", *.0 as u32)]
    UnescapedRune(char),
}

/// A parsed field selector: the AND of its terms, or the selector that matches nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
    nothing: bool,
}

impl FieldSelector {
    /// The selector that matches everything (also what an empty string parses to).
    pub fn everything() -> FieldSelector {
        FieldSelector::default()
    }

    /// The selector that matches nothing.
    pub fn nothing() -> FieldSelector {
        FieldSelector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// A selector of the given terms, kept in the given order.
    pub fn from_requirements(requirements: Vec<FieldRequirement>) -> FieldSelector {
        FieldSelector {
            requirements,
            nothing: false,
        }
    }

    /// Parses `a=b,c==d,e!=f` with upstream's escaping; terms are sorted by their text.
    pub fn parse(selector: &str) -> Result<FieldSelector, FieldSelectorError> {
        let mut parts = split_terms(selector);
        parts.sort_unstable();
        let mut requirements = Vec::new();
        for part in parts.into_iter().filter(|p| !p.is_empty()) {
            let Some((field, operator, raw)) = split_term(part) else {
                return Err(FieldSelectorError::InvalidTerm {
                    selector: selector.to_string(),
                    term: part.to_string(),
                });
            };
            requirements.push(FieldRequirement {
                field: field.to_string(),
                operator,
                value: unescape_value(raw)?,
            });
        }
        Ok(FieldSelector {
            requirements,
            nothing: false,
        })
    }

    /// The terms, so a caller can reject fields its resource does not support.
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    /// Whether every term holds, reading field values through `get` (a missing field
    /// compares as the empty string).
    pub fn matches(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(get(&r.field)))
    }

    /// Whether the selector places no restriction.
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// Whether this is the selector that matches nothing.
    pub fn matches_nothing(&self) -> bool {
        self.nothing
    }

    /// The value `field` must equal, if some `=` term names it (e.g. `metadata.name` lets
    /// a list become a get).
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.field == field && r.operator == FieldOperator::Equals)
            .map(|r| r.value.as_str())
    }

    /// Rewrites every term through `f` (field label conversion); a term mapped to an empty
    /// field and value is dropped, like upstream's `Transform`.
    pub fn transform<E>(
        self,
        mut f: impl FnMut(&str, &str) -> Result<(String, String), E>,
    ) -> Result<FieldSelector, E> {
        let mut requirements = Vec::with_capacity(self.requirements.len());
        for r in self.requirements {
            let (field, value) = f(&r.field, &r.value)?;
            if !(field.is_empty() && value.is_empty()) {
                requirements.push(FieldRequirement {
                    field,
                    operator: r.operator,
                    value,
                });
            }
        }
        Ok(FieldSelector {
            requirements,
            nothing: self.nothing,
        })
    }
}

impl fmt::Display for FieldSelector {
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

impl std::str::FromStr for FieldSelector {
    type Err = FieldSelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FieldSelector::parse(s)
    }
}

/// Escapes `\`, `,` and `=` in a value with a backslash.
pub fn escape_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Reverses [`escape_value`], rejecting unknown escapes and unescaped `,` / `=`.
pub fn unescape_value(s: &str) -> Result<String, FieldSelectorError> {
    if !s.contains(['\\', ',', '=']) {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            match c {
                '\\' | ',' | '=' => out.push(c),
                other => return Err(FieldSelectorError::InvalidEscape(format!("\\{other}"))),
            }
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => return Err(FieldSelectorError::UnescapedRune(c)),
            other => out.push(other),
        }
    }
    if in_slash {
        return Err(FieldSelectorError::InvalidEscape("\\".to_string()));
    }
    Ok(out)
}

/// Splits on commas that are not escaped by a backslash.
fn split_terms(selector: &str) -> Vec<&str> {
    if selector.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in selector.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&selector[start..i]);
            start = i + 1;
        }
    }
    terms.push(&selector[start..]);
    terms
}

/// Splits a term at the first operator (`!=`, then `==`, then `=` at each position).
fn split_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (op, kind) in [
            ("!=", FieldOperator::NotEquals),
            ("==", FieldOperator::Equals),
            ("=", FieldOperator::Equals),
        ] {
            if let Some(value) = rest.strip_prefix(op) {
                return Some((&term[..i], kind, value));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn getter(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |f| m.get(f).cloned()
    }

    #[test]
    fn parses_all_operators_and_prints_sorted_terms() {
        let s =
            FieldSelector::parse("status.phase!=Failed,metadata.name==x,spec.nodeName=n1").unwrap();
        assert_eq!(
            s.to_string(),
            "metadata.name=x,spec.nodeName=n1,status.phase!=Failed"
        );
        assert_eq!(
            s.requirements()[2],
            FieldRequirement {
                field: "status.phase".to_string(),
                operator: FieldOperator::NotEquals,
                value: "Failed".to_string()
            }
        );
    }

    #[test]
    fn empty_selector_matches_everything() {
        let s = FieldSelector::parse("").unwrap();
        assert!(s.is_empty());
        assert!(s.matches(getter(&[])));
        assert!(FieldSelector::parse(",,").unwrap().is_empty());
    }

    #[test]
    fn missing_fields_compare_as_empty_string() {
        let s = FieldSelector::parse("spec.nodeName=").unwrap();
        assert!(s.matches(getter(&[])));
        let s = FieldSelector::parse("spec.nodeName!=").unwrap();
        assert!(!s.matches(getter(&[])));
        assert!(s.matches(getter(&[("spec.nodeName", "n1")])));
    }

    #[test]
    fn all_terms_must_hold() {
        let s = FieldSelector::parse("a=1,b!=2").unwrap();
        assert!(s.matches(getter(&[("a", "1"), ("b", "3")])));
        assert!(!s.matches(getter(&[("a", "1"), ("b", "2")])));
        assert!(!s.matches(getter(&[("a", "2")])));
    }

    #[test]
    fn escaped_commas_and_equals_stay_in_values() {
        let s = FieldSelector::parse(r"a=x\,y\=z\\,b=2").unwrap();
        assert_eq!(s.requirements()[0].value, r"x,y=z\");
        assert_eq!(s.to_string(), r"a=x\,y\=z\\,b=2");
        assert!(s.matches(getter(&[("a", r"x,y=z\"), ("b", "2")])));
    }

    #[test]
    fn errors_use_upstream_texts() {
        assert_eq!(
            FieldSelector::parse("a=b,c").unwrap_err().to_string(),
            "invalid selector: 'a=b,c'; can't understand 'c'"
        );
        assert_eq!(
            FieldSelector::parse(r"a=\x").unwrap_err().to_string(),
            r"invalid field selector: invalid escape sequence: \x"
        );
        assert_eq!(
            FieldSelector::parse(r"a=b\").unwrap_err().to_string(),
            r"invalid field selector: invalid escape sequence: \"
        );
        assert_eq!(
            FieldSelector::parse("a=b=c").unwrap_err().to_string(),
            "invalid field selector: unescaped character in value: 61"
        );
    }

    #[test]
    fn exact_match_and_nothing() {
        let s = FieldSelector::parse("metadata.name=foo,metadata.namespace!=x").unwrap();
        assert_eq!(s.requires_exact_match("metadata.name"), Some("foo"));
        assert_eq!(s.requires_exact_match("metadata.namespace"), None);
        let n = FieldSelector::nothing();
        assert!(!n.matches(getter(&[])));
        assert!(!n.is_empty());
    }

    #[test]
    fn transform_rewrites_and_drops_emptied_terms() {
        let s = FieldSelector::parse("spec.host=n1,x=y").unwrap();
        let t = s
            .transform(|f, v| -> Result<_, String> {
                match f {
                    "spec.host" => Ok(("spec.nodeName".to_string(), v.to_string())),
                    _ => Ok((String::new(), String::new())),
                }
            })
            .unwrap();
        assert_eq!(t.to_string(), "spec.nodeName=n1");
        let e = FieldSelector::parse("bad=1").unwrap().transform(|f, _| {
            Err::<(String, String), _>(format!("field label not supported: {f}"))
        });
        assert_eq!(e.unwrap_err(), "field label not supported: bad");
    }
}
