//! Go's text renderings that leak into Kubernetes messages and documents: `%q` quoting,
//! `%v` of simple values, `%#v` of string slices and maps, and JSON as Go's
//! `encoding/json` and json-iterator write it.
//!
//! Upstream messages are built with `fmt.Sprintf("%q", …)` and `json.Marshal`, and field
//! sets, manager identifiers and the last-applied annotation are JSON written by Go code,
//! so a client sees Go's escaping rules and number forms. This is the one home of those
//! renderings for every k1s crate.

use crate::field::{ErrorType, FieldError, Path};
use serde_json::{Map, Number, Value};
use std::fmt::Write as _;

/// Quotes `s` the way Go's `strconv.Quote` (and `%q`) does.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if is_print(c) => out.push(c),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// Approximates Go's `strconv.IsPrint`: letters, marks, numbers, punctuation, symbols and
/// the ASCII space are printable; controls, other spaces, format, private-use and
/// noncharacter code points are not.
pub fn is_print(c: char) -> bool {
    if c.is_ascii() {
        return (' '..='~').contains(&c);
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = c as u32;
    let format_or_private = matches!(u,
        0x00AD
        | 0x0600..=0x0605
        | 0x061C
        | 0x06DD
        | 0x070F
        | 0x0890..=0x0891
        | 0x08E2
        | 0x180E
        | 0x200B..=0x200F
        | 0x202A..=0x202E
        | 0x2060..=0x206F
        | 0xE000..=0xF8FF
        | 0xFDD0..=0xFDEF
        | 0xFEFF
        | 0xFFF9..=0xFFFB
        | 0x110BD
        | 0xE0001
        | 0xE0020..=0xE007F
        | 0xF0000..=0x10FFFF);
    !format_or_private && (u & 0xFFFE) != 0xFFFE
}

/// Renders a value the way `field.Error` prints a bad value: numbers and booleans with
/// `%v`, strings with `%q`, everything else as Go's `json.Marshal` output.
pub fn bad_value(v: &Value) -> String {
    match v {
        Value::String(s) => quote(s),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => float_v(f),
            _ => n.to_string(),
        },
        other => json(other),
    }
}

/// Go's `%v` for a `float64`: shortest digits, exponent form below 1e-4 or from 1e6 on, e.g. `1e+06`, `1.5e-07`, `0.001`, `123.5`.
pub fn float_v(f: f64) -> String {
    if !f.is_finite() {
        return if f.is_nan() {
            "NaN".to_string()
        } else if f > 0.0 {
            "+Inf".to_string()
        } else {
            "-Inf".to_string()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    let (mantissa, exp) = sci_parts(f);
    // `%v` is `%g` with the shortest precision, which switches to exponent form when the
    // decimal exponent is below -4 or at least 6.
    if !(-4..6).contains(&exp) {
        return format!(
            "{mantissa}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        );
    }
    format!("{f}")
}

/// A float as Go's `encoding/json` (and json-iterator) writes it: shortest digits, in
/// exponent form below 1e-6 and from 1e21 on (`1e-7`, `1e+21`).
pub fn float_json(f: f64) -> String {
    if !f.is_finite() {
        return "null".to_string();
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let (mantissa, exp) = sci_parts(f);
        return format!(
            "{mantissa}e{}{}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        );
    }
    // Rust's Display is the shortest round-trip form in fixed notation, as Go's 'f', -1.
    format!("{f}")
}

/// Splits `f` into its shortest mantissa text ("1.5", "-2") and decimal exponent.
fn sci_parts(f: f64) -> (String, i32) {
    let s = format!("{f:e}");
    match s.split_once('e') {
        Some((m, e)) => (m.to_string(), e.parse().unwrap_or(0)),
        None => (s, 0),
    }
}

/// A JSON number as Go writes it: integers in decimal, floats per `encoding/json`.
pub fn number_json(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else {
        float_json(n.as_f64().unwrap_or(0.0))
    }
}

/// How a JSON document is written.
#[derive(Debug, Clone, Copy)]
pub struct JsonStyle {
    /// Write object keys in byte order (Go maps) instead of document order.
    pub sort_keys: bool,
    /// Escape `<`, `>` and `&` as `\u003c`, `\u003e`, `\u0026`.
    pub escape_html: bool,
    /// Escape U+2028 and U+2029.
    pub escape_line_separators: bool,
    /// Write backspace and form feed as `\b` and `\f` (Go 1.22+ `encoding/json`) rather than
    /// `\u0008` and `\u000c` (json-iterator).
    pub short_bf: bool,
}

impl JsonStyle {
    /// json-iterator's `ConfigCompatibleWithStandardLibrary` writing a value (`WriteVal`).
    pub const JSONITER_VALUE: Self = Self {
        sort_keys: true,
        escape_html: true,
        escape_line_separators: true,
        short_bf: false,
    };
    /// json-iterator's `WriteString`/`WriteObjectField`: no HTML escaping.
    pub const JSONITER_RAW: Self = Self {
        sort_keys: true,
        escape_html: false,
        escape_line_separators: false,
        short_bf: false,
    };
    /// Go's `encoding/json` with its defaults (a map's keys sorted).
    pub const GO: Self = Self {
        sort_keys: true,
        escape_html: true,
        escape_line_separators: true,
        short_bf: true,
    };
    /// Go's `encoding/json` of a struct-shaped value: members in document order.
    pub const GO_IN_ORDER: Self = Self {
        sort_keys: false,
        ..Self::GO
    };
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` as a JSON string literal.
pub fn write_string(out: &mut String, s: &str, style: JsonStyle) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' if style.short_bf => out.push_str("\\b"),
            '\u{c}' if style.short_bf => out.push_str("\\f"),
            '<' | '>' | '&' if style.escape_html => push_u_escape(out, c as u32),
            '\u{2028}' | '\u{2029}' if style.escape_line_separators => push_u_escape(out, c as u32),
            c if (c as u32) < 0x20 => push_u_escape(out, c as u32),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn push_u_escape(out: &mut String, v: u32) {
    out.push_str("\\u");
    for shift in [12, 8, 4, 0] {
        out.push(HEX[((v >> shift) & 0xf) as usize] as char);
    }
}

/// Appends `v` as JSON in the given style.
pub fn write_value(out: &mut String, v: &Value, style: JsonStyle) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&number_json(n)),
        Value::String(s) => write_string(out, s, style),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item, style);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            if style.sort_keys {
                entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            }
            for (i, (k, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, k, style);
                out.push(':');
                write_value(out, item, style);
            }
            out.push('}');
        }
    }
}

/// `v` as JSON in the given style.
pub fn to_json(v: &Value, style: JsonStyle) -> String {
    let mut out = String::new();
    write_value(&mut out, v, style);
    out
}

/// Go's `json.Marshal` of a JSON value: compact, HTML characters escaped, object members
/// in the order they are stored.
pub fn json(v: &Value) -> String {
    to_json(v, JsonStyle::GO_IN_ORDER)
}

// `field.Error` prints a struct, slice or map bad value with `%#v` (`roleRef: Invalid value:
// rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"ClusterRole", Name:"view"}:
// cannot change roleRef`); a JSON bad value would print as JSON, so these build the Go
// text and `invalid_go` puts it in the error as upstream shows it.

/// `%#v` of a slice of strings (or of a named string type `elem`): `[]string{"a", "b"}`,
/// `[]string{}` for an empty list and `[]string(nil)` for an absent one.
pub fn go_strings(elem: &str, items: Option<&[Value]>) -> String {
    match items {
        None => format!("[]{elem}(nil)"),
        Some(items) => {
            let inner: Vec<String> = items
                .iter()
                .map(|v| quote(v.as_str().unwrap_or_default()))
                .collect();
            format!("[]{elem}{{{}}}", inner.join(", "))
        }
    }
}

/// `%#v` of a `map[string]string`: keys sorted, `map[string]string{"a":"b", "c":"d"}`,
/// `map[string]string(nil)` when absent.
pub fn go_string_map(map: Option<&Map<String, Value>>) -> String {
    let Some(map) = map else {
        return "map[string]string(nil)".to_string();
    };
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    let inner: Vec<String> = keys
        .iter()
        .map(|k| {
            format!(
                "{}:{}",
                quote(k),
                quote(map.get(*k).and_then(Value::as_str).unwrap_or_default())
            )
        })
        .collect();
    format!("map[string]string{{{}}}", inner.join(", "))
}

/// An `Invalid value` error whose value is already rendered the Go way (`rendered`):
/// the message reads `path: Invalid value: <rendered>: detail`, exactly upstream's.
pub fn invalid_go(path: &Path, rendered: String, detail: &str) -> FieldError {
    // The value travels in the detail because a JSON bad value would render as JSON;
    // `body()` prints a value-less Invalid error as `Invalid value: <detail>`.
    FieldError {
        error_type: ErrorType::Invalid,
        field: path.to_string(),
        bad_value: None,
        detail: format!("{rendered}: {detail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quote_escapes_like_go_strconv_quote() {
        assert_eq!(quote("abc"), "\"abc\"");
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(quote("tab\there\n"), "\"tab\\there\\n\"");
        assert_eq!(quote("\u{1}\u{7f}"), "\"\\x01\\x7f\"");
        assert_eq!(quote("héllo 世界"), "\"héllo 世界\"");
        assert_eq!(quote("nb\u{a0}sp"), "\"nb\\u00a0sp\"");
        assert_eq!(quote("\u{feff}"), "\"\\ufeff\"");
        assert_eq!(quote("\u{e0001}"), "\"\\U000e0001\"");
    }

    #[test]
    fn json_escapes_html_characters_like_go_encoding_json() {
        assert_eq!(json(&json!("<a&b>")), "\"\\u003ca\\u0026b\\u003e\"");
        assert_eq!(json(&json!(["a", 1, true, null])), "[\"a\",1,true,null]");
        assert_eq!(json(&json!({"k": {"n": 1.5}})), "{\"k\":{\"n\":1.5}}");
        assert_eq!(json(&json!("\u{1}")), "\"\\u0001\"");
    }

    #[test]
    fn json_floats_follow_go_formatting() {
        assert_eq!(json(&json!(1.0)), "1");
        assert_eq!(json(&json!(1e21)), "1e+21");
        assert_eq!(json(&json!(1.5e-7)), "1.5e-7");
        assert_eq!(json(&json!(123456789.0)), "123456789");
    }

    #[test]
    fn bad_values_render_strings_quoted_and_numbers_plain() {
        assert_eq!(bad_value(&json!("x")), "\"x\"");
        assert_eq!(bad_value(&json!(-1)), "-1");
        assert_eq!(bad_value(&json!(false)), "false");
        assert_eq!(bad_value(&json!(null)), "null");
        assert_eq!(bad_value(&json!(["a", "b"])), "[\"a\",\"b\"]");
        assert_eq!(bad_value(&json!(0.5)), "0.5");
        assert_eq!(bad_value(&json!(1e6)), "1e+06");
        assert_eq!(bad_value(&json!(123456.0)), "123456");
        assert_eq!(bad_value(&json!(0.00001)), "1e-05");
    }

    #[test]
    fn styles_escape_and_order_like_their_go_writers() {
        let v = json!({"b": "<x>&\u{8}", "a": [1, 2.5, true, null]});
        assert_eq!(
            to_json(&v, JsonStyle::JSONITER_VALUE),
            r#"{"a":[1,2.5,true,null],"b":"\u003cx\u003e\u0026\u0008"}"#
        );
        assert_eq!(
            to_json(&v, JsonStyle::GO),
            r#"{"a":[1,2.5,true,null],"b":"\u003cx\u003e\u0026\b"}"#
        );
        assert_eq!(
            to_json(&v, JsonStyle::GO_IN_ORDER),
            r#"{"b":"\u003cx\u003e\u0026\b","a":[1,2.5,true,null]}"#
        );
        assert_eq!(quote("a\"b\\c\n\u{1}é\u{a0}"), r#""a\"b\\c\n\x01é\u00a0""#);
    }

    #[test]
    fn json_and_v_forms_of_floats_match_go() {
        // encoding/json switches to exponent form below 1e-6 and from 1e21, %v below
        // 1e-4 and from 1e6.
        let cases = [
            (80.0, "80", "80"),
            (1.5, "1.5", "1.5"),
            (1e21, "1e+21", "1e+21"),
            (1.5e-7, "1.5e-7", "1.5e-07"),
            (1e6, "1000000", "1e+06"),
            (123456.0, "123456", "123456"),
            (0.0001, "0.0001", "0.0001"),
            (0.00001, "0.00001", "1e-05"),
            (-1234567.0, "-1234567", "-1.234567e+06"),
        ];
        for (f, json, v) in cases {
            assert_eq!(float_json(f), json, "json of {f}");
            assert_eq!(float_v(f), v, "%v of {f}");
        }
    }

    #[test]
    fn renders_like_go_percent_sharp_v() {
        assert_eq!(quote("a\"b\n"), "\"a\\\"b\\n\"");
        let l = json!(["Ingress", "Egress"]);
        assert_eq!(
            go_strings("networking.PolicyType", l.as_array().map(Vec::as_slice)),
            "[]networking.PolicyType{\"Ingress\", \"Egress\"}"
        );
        assert_eq!(go_strings("string", None), "[]string(nil)");
        let m = json!({"b": "2", "a": "1"});
        assert_eq!(
            go_string_map(m.as_object()),
            "map[string]string{\"a\":\"1\", \"b\":\"2\"}"
        );
        let e = invalid_go(
            &Path::new("roleRef"),
            "rbac.RoleRef{}".into(),
            "cannot change roleRef",
        );
        assert_eq!(
            e.to_string(),
            "roleRef: Invalid value: rbac.RoleRef{}: cannot change roleRef"
        );
    }
}
