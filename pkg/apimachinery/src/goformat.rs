//! Go's text renderings that leak into Kubernetes messages: `%q` quoting, `%v` of simple
//! values and `encoding/json` output.
//!
//! Upstream messages are built with `fmt.Sprintf("%q", …)` and `json.Marshal`, so a client
//! sees Go's escaping rules. These helpers reproduce them for the values k1s renders.

use serde_json::Value;
use std::fmt::Write as _;

/// Quotes `s` the way Go's `strconv.Quote` (and `%q`) does.
pub(crate) fn quote(s: &str) -> String {
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
/// the ASCII space are printable; controls, other spaces and format characters are not.
pub(crate) fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = c as u32;
    !matches!(u,
        0x00AD
        | 0x0600..=0x0605
        | 0x061C
        | 0x06DD
        | 0x070F
        | 0x180E
        | 0x200B..=0x200F
        | 0x202A..=0x202E
        | 0x2060..=0x206F
        | 0xD800..=0xDFFF
        | 0xE000..=0xF8FF
        | 0xFEFF
        | 0xFFF9..=0xFFFB
        | 0xFFFE..=0xFFFF
        | 0x110BD
        | 0xE0001
        | 0xE0020..=0xE007F
        | 0xF0000..=0x10FFFF)
}

/// Renders a value the way `field.Error` prints a bad value: numbers and booleans with
/// `%v`, strings with `%q`, everything else as Go's `json.Marshal` output.
pub(crate) fn bad_value(v: &Value) -> String {
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
pub(crate) fn float_v(f: f64) -> String {
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

/// Go's `encoding/json` rendering of a `float64`.
fn float_json(f: f64) -> String {
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

/// Go's `json.Marshal` of a JSON value: compact, HTML characters escaped, object members
/// in the order they are stored.
pub(crate) fn json(v: &Value) -> String {
    let mut out = String::new();
    write_json(&mut out, v);
    out
}

fn write_json(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => out.push_str(&float_json(f)),
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => write_json_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(out, k);
                out.push(':');
                write_json(out, item);
            }
            out.push('}');
        }
    }
}

fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
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
}
