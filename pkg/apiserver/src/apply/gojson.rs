//! Go-compatible text forms: JSON as Go's `encoding/json` and json-iterator write it, `%q`
//! quoting and `%v` of floats.
//!
//! Field sets, manager identifiers, the last-applied annotation and conflict messages are
//! all produced by Go code upstream; these helpers reproduce the exact bytes.

use serde_json::{Number, Value};

/// How a JSON document is written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JsonStyle {
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
    /// Go's `encoding/json` with its defaults.
    pub const GO: Self = Self {
        sort_keys: true,
        escape_html: true,
        escape_line_separators: true,
        short_bf: true,
    };
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` as a JSON string literal.
pub(crate) fn write_string(out: &mut String, s: &str, style: JsonStyle) {
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
pub(crate) fn write_value(out: &mut String, v: &Value, style: JsonStyle) {
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
pub(crate) fn to_json(v: &Value, style: JsonStyle) -> String {
    let mut out = String::new();
    write_value(&mut out, v, style);
    out
}

/// A JSON number as Go writes it: integers in decimal, floats per `encoding/json`.
pub(crate) fn number_json(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else {
        float_json(n.as_f64().unwrap_or(0.0))
    }
}

/// A float as Go's `encoding/json` (and json-iterator) writes it.
pub(crate) fn float_json(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Go: strconv 'e' format, then `e-07` is shortened to `e-7`.
        let (mantissa, exp) = split_exp(f);
        if exp < 0 {
            format!("{mantissa}e-{}", -exp)
        } else {
            format!("{mantissa}e+{exp:02}")
        }
    } else {
        // Rust's Display is the shortest round-trip form in fixed notation, as Go's 'f', -1.
        format!("{f}")
    }
}

/// A float as Go's `%v` prints it (`strconv.FormatFloat(f, 'g', -1, 64)`).
pub(crate) fn float_go_v(f: f64) -> String {
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let (mantissa, exp) = split_exp(f);
    // strconv's shortest 'g' uses the exponent form when exp < -4 or exp >= 6.
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format!("{f}")
    }
}

/// Splits the shortest round-trip scientific form of `f` into mantissa and exponent.
fn split_exp(f: f64) -> (String, i32) {
    let s = format!("{f:e}");
    match s.split_once('e') {
        Some((m, e)) => (m.to_string(), e.parse().unwrap_or(0)),
        None => (s, 0),
    }
}

/// Go's `%q` of a string (`strconv.Quote`).
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if go_is_print(c) => out.push(c),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str("\\x");
                out.push(HEX[(c as u32 >> 4) as usize] as char);
                out.push(HEX[(c as u32 & 0xf) as usize] as char);
            }
            c if (c as u32) < 0x10000 => push_u_escape(&mut out, c as u32),
            c => {
                out.push_str("\\U");
                let v = c as u32;
                for shift in [28, 24, 20, 16, 12, 8, 4, 0] {
                    out.push(HEX[((v >> shift) & 0xf) as usize] as char);
                }
            }
        }
    }
    out.push('"');
    out
}

/// An approximation of Go's `unicode.IsPrint`: letters, marks, numbers, punctuation,
/// symbols and the ASCII space; not controls, other spaces, format or private-use characters.
pub(crate) fn go_is_print(c: char) -> bool {
    if c.is_ascii() {
        return (' '..='~').contains(&c);
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let v = c as u32;
    let format_or_private = matches!(
        v,
        0xad | 0x600..=0x605
            | 0x61c
            | 0x6dd
            | 0x70f
            | 0x890..=0x891
            | 0x8e2
            | 0x180e
            | 0x200b..=0x200f
            | 0x202a..=0x202e
            | 0x2060..=0x2064
            | 0x2066..=0x206f
            | 0xfeff
            | 0xfff9..=0xfffb
            | 0xe000..=0xf8ff
            | 0xf0000..=0x10ffff
            | 0xfdd0..=0xfdef
    ) || (v & 0xfffe) == 0xfffe;
    !format_or_private
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_match_go() {
        // encoding/json switches to exponent form below 1e-6 and from 1e21.
        let cases = [
            (80.0, "80", "80"),
            (1.5, "1.5", "1.5"),
            (1e21, "1e+21", "1e+21"),
            (1.5e-7, "1.5e-7", "1.5e-07"),
            (1e6, "1000000", "1e+06"),
            (123456.0, "123456", "123456"),
            (0.0001, "0.0001", "0.0001"),
            (0.00001, "0.00001", "1e-05"),
        ];
        for (f, json, v) in cases {
            assert_eq!(float_json(f), json, "json of {f}");
            assert_eq!(float_go_v(f), v, "%v of {f}");
        }
    }

    #[test]
    fn strings_and_values_match_go() {
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
            go_quote("a\"b\\c\n\u{1}é\u{a0}"),
            r#""a\"b\\c\n\x01é\u00a0""#
        );
    }
}
