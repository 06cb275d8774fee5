//! What the Go side of upstream prints, reproduced for the error texts kubectl shows.
//!
//! Upstream's patch errors embed values formatted by Go's `fmt` (`%v` of decoded JSON),
//! Go type names (`map[string]interface {}`) and the syntax errors of Go's
//! `encoding/json`. The helpers here produce the same text from `serde_json` values and
//! raw bytes, so that `Status.message` matches what a real API server returns.

use k1s_apimachinery::goformat::{float_v, quote};
use serde_json::Value;

/// The Go dynamic type a decoded JSON value has on the upstream server.
///
/// The API server decodes patches preserving integers (`int64`), everything else numeric
/// is `float64`; the type matters because upstream compares element types of lists and
/// keeps merge-key values of different types apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GoKind {
    /// JSON `null` (a Go `nil`).
    Nil,
    /// `bool`.
    Bool,
    /// `int64`.
    Int,
    /// `float64`.
    Float,
    /// `string`.
    String,
    /// `[]interface {}`.
    Slice,
    /// `map[string]interface {}`.
    Map,
}

/// Go type name of a map, as `reflect.Type.String()` prints it.
pub(crate) const GO_MAP: &str = "map[string]interface {}";
/// Go type name of a slice, as `reflect.Type.String()` prints it.
pub(crate) const GO_SLICE: &str = "[]interface {}";

/// The Go kind of a decoded JSON value.
pub(crate) fn go_kind(v: &Value) -> GoKind {
    match v {
        Value::Null => GoKind::Nil,
        Value::Bool(_) => GoKind::Bool,
        Value::Number(n) if n.is_i64() => GoKind::Int,
        Value::Number(_) => GoKind::Float,
        Value::String(_) => GoKind::String,
        Value::Array(_) => GoKind::Slice,
        Value::Object(_) => GoKind::Map,
    }
}

/// `%s` of a `reflect.Type` of the value (`%!s(<nil>)` for `nil`).
pub(crate) fn go_type(v: &Value) -> &'static str {
    match go_kind(v) {
        GoKind::Nil => "%!s(<nil>)",
        GoKind::Bool => "bool",
        GoKind::Int => "int64",
        GoKind::Float => "float64",
        GoKind::String => "string",
        GoKind::Slice => GO_SLICE,
        GoKind::Map => GO_MAP,
    }
}

/// The word `encoding/json` uses for a JSON value in "cannot unmarshal X into …".
pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Go's `fmt` `%v` of a decoded JSON value (`map[a:1 b:[x y]]`, `<nil>`, …).
pub(crate) fn go_v(v: &Value) -> String {
    let mut out = String::new();
    write_go(&mut out, v, false);
    out
}

/// Go's `fmt` `%s` of a decoded JSON value: strings as they are, other scalars as
/// `%!s(int64=1)`.
pub(crate) fn go_s(v: &Value) -> String {
    let mut out = String::new();
    write_go(&mut out, v, true);
    out
}

fn write_go(out: &mut String, v: &Value, verb_s: bool) {
    let bad = |out: &mut String, ty: &str, text: &str| {
        out.push_str("%!s(");
        out.push_str(ty);
        out.push('=');
        out.push_str(text);
        out.push(')');
    };
    match v {
        Value::Null => out.push_str(if verb_s { "%!s(<nil>)" } else { "<nil>" }),
        Value::Bool(b) => {
            let text = if *b { "true" } else { "false" };
            if verb_s {
                bad(out, "bool", text)
            } else {
                out.push_str(text)
            }
        }
        Value::Number(n) => {
            let (ty, text) = match n.as_i64() {
                Some(i) => ("int64", i.to_string()),
                None => ("float64", float_v(n.as_f64().unwrap_or(f64::NAN))),
            };
            if verb_s {
                bad(out, ty, &text)
            } else {
                out.push_str(&text)
            }
        }
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_go(out, item, verb_s);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // fmt prints maps with their keys sorted.
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push_str("map[");
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                if let Some(item) = map.get(k) {
                    write_go(out, item, verb_s);
                }
            }
            out.push(']');
        }
    }
}

/// Go's `strconv.Atoi`, with its error text (`strconv.Atoi: parsing "x": invalid syntax`).
pub(crate) fn go_atoi(s: &str) -> Result<i64, String> {
    let syntax = || format!("strconv.Atoi: parsing {}: invalid syntax", quote(s));
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(syntax());
    }
    let mut value: i64 = 0;
    for b in digits.bytes() {
        let d = i64::from(b - b'0');
        value = match value.checked_mul(10).and_then(|v| {
            if neg {
                v.checked_sub(d)
            } else {
                v.checked_add(d)
            }
        }) {
            Some(v) => v,
            None => {
                return Err(format!(
                    "strconv.Atoi: parsing {}: value out of range",
                    quote(s)
                ));
            }
        };
    }
    Ok(value)
}

/// The message of Go's `encoding/json` for input that ends early.
pub(crate) const UNEXPECTED_END: &str = "unexpected end of JSON input";

/// Deepest nesting Go's JSON scanner accepts.
const MAX_NESTING_DEPTH: usize = 10_000;

/// Go's `quoteChar` of the scanner: the offending byte in single quotes.
fn quote_char(c: u8) -> String {
    match c {
        b'\'' => "'\\''".into(),
        b'"' => "'\"'".into(),
        c => {
            // Go converts the byte to the rune of the same number before quoting.
            let q = quote(&char::from(c).to_string());
            format!("'{}'", &q[1..q.len() - 1])
        }
    }
}

fn syntax_error(c: u8, context: &str) -> String {
    format!("invalid character {} {context}", quote_char(c))
}

enum Nest {
    Object,
    Array,
}

/// Checks `data` the way Go's `encoding/json` scanner does and returns its message for
/// the first syntax error (`invalid character 'x' looking for beginning of value`,
/// `unexpected end of JSON input`, …).
pub(crate) fn check_json_syntax(data: &[u8]) -> Result<(), String> {
    let mut s = Scanner { data, pos: 0 };
    let mut stack: Vec<Nest> = Vec::new();
    'value: loop {
        s.skip_space();
        let c = s.peek().ok_or(UNEXPECTED_END)?;
        match c {
            b'{' | b'[' => {
                if stack.len() >= MAX_NESTING_DEPTH {
                    return Err(syntax_error(c, "exceeded max depth"));
                }
                s.pos += 1;
                s.skip_space();
                let next = s.peek().ok_or(UNEXPECTED_END)?;
                if c == b'{' {
                    match next {
                        b'}' => s.pos += 1,
                        b'"' => {
                            stack.push(Nest::Object);
                            s.string()?;
                            s.colon()?;
                            continue 'value;
                        }
                        other => {
                            return Err(syntax_error(
                                other,
                                "looking for beginning of object key string",
                            ));
                        }
                    }
                } else if next == b']' {
                    s.pos += 1;
                } else {
                    stack.push(Nest::Array);
                    continue 'value;
                }
            }
            b'"' => s.string()?,
            b'-' | b'0'..=b'9' => s.number()?,
            b't' => s.literal(b"true")?,
            b'f' => s.literal(b"false")?,
            b'n' => s.literal(b"null")?,
            other => return Err(syntax_error(other, "looking for beginning of value")),
        }
        // A value ended: continue the enclosing container.
        loop {
            s.skip_space();
            match stack.last() {
                None => {
                    return match s.peek() {
                        Some(c) => Err(syntax_error(c, "after top-level value")),
                        None => Ok(()),
                    };
                }
                Some(Nest::Object) => match s.peek().ok_or(UNEXPECTED_END)? {
                    b',' => {
                        s.pos += 1;
                        s.skip_space();
                        match s.peek().ok_or(UNEXPECTED_END)? {
                            b'"' => {
                                s.string()?;
                                s.colon()?;
                                continue 'value;
                            }
                            other => {
                                return Err(syntax_error(
                                    other,
                                    "looking for beginning of object key string",
                                ));
                            }
                        }
                    }
                    b'}' => {
                        s.pos += 1;
                        stack.pop();
                    }
                    other => return Err(syntax_error(other, "after object key:value pair")),
                },
                Some(Nest::Array) => match s.peek().ok_or(UNEXPECTED_END)? {
                    b',' => {
                        s.pos += 1;
                        continue 'value;
                    }
                    b']' => {
                        s.pos += 1;
                        stack.pop();
                    }
                    other => return Err(syntax_error(other, "after array element")),
                },
            }
        }
    }
}

struct Scanner<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    fn next(&mut self) -> Result<u8, String> {
        let c = self.peek().ok_or(UNEXPECTED_END)?;
        self.pos += 1;
        Ok(c)
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn colon(&mut self) -> Result<(), String> {
        self.skip_space();
        match self.next()? {
            b':' => Ok(()),
            other => Err(syntax_error(other, "after object key")),
        }
    }

    /// A string, starting at its opening quote.
    fn string(&mut self) -> Result<(), String> {
        self.pos += 1;
        loop {
            match self.next()? {
                b'"' => return Ok(()),
                b'\\' => match self.next()? {
                    b'b' | b'f' | b'n' | b'r' | b't' | b'\\' | b'/' | b'"' => {}
                    b'u' => {
                        for _ in 0..4 {
                            let h = self.next()?;
                            if !h.is_ascii_hexdigit() {
                                return Err(syntax_error(h, "in \\u hexadecimal character escape"));
                            }
                        }
                    }
                    other => return Err(syntax_error(other, "in string escape code")),
                },
                c if c < 0x20 => return Err(syntax_error(c, "in string literal")),
                _ => {}
            }
        }
    }

    /// A number, starting at its sign or first digit; stops before the first byte that
    /// cannot continue it.
    fn number(&mut self) -> Result<(), String> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
            match self.peek().ok_or(UNEXPECTED_END)? {
                b'0'..=b'9' => {}
                other => return Err(syntax_error(other, "in numeric literal")),
            }
        }
        if self.next()? != b'0' {
            self.digits();
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            match self.next()? {
                b'0'..=b'9' => self.digits(),
                other => {
                    return Err(syntax_error(
                        other,
                        "after decimal point in numeric literal",
                    ));
                }
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            let mut c = self.next()?;
            if c == b'+' || c == b'-' {
                c = self.next()?;
            }
            if !c.is_ascii_digit() {
                return Err(syntax_error(c, "in exponent of numeric literal"));
            }
            self.digits();
        }
        Ok(())
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), String> {
        let name = String::from_utf8_lossy(word).into_owned();
        self.pos += 1;
        for &expect in &word[1..] {
            let c = self.next()?;
            if c != expect {
                let context = format!("in literal {name} (expecting {})", quote_char(expect));
                return Err(syntax_error(c, &context));
            }
        }
        Ok(())
    }
}

/// Decodes JSON bytes, reporting syntax errors with Go's `encoding/json` messages.
pub(crate) fn decode_json(data: &[u8]) -> Result<Value, String> {
    check_json_syntax(data)?;
    serde_json::from_slice(data).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn syntax_errors_read_like_go() {
        let cases: &[(&str, &str)] = &[
            ("", UNEXPECTED_END),
            ("   ", UNEXPECTED_END),
            ("{", UNEXPECTED_END),
            ("[1,", UNEXPECTED_END),
            ("\"abc", UNEXPECTED_END),
            ("x", "invalid character 'x' looking for beginning of value"),
            (
                "<THIS IS NOT JSON>",
                "invalid character '<' looking for beginning of value",
            ),
            (
                "{a:1}",
                "invalid character 'a' looking for beginning of object key string",
            ),
            ("{\"a\" 1}", "invalid character '1' after object key"),
            (
                "{\"a\":1 \"b\"}",
                "invalid character '\"' after object key:value pair",
            ),
            (
                "{\"a\":1,}",
                "invalid character '}' looking for beginning of object key string",
            ),
            ("[1 2]", "invalid character '2' after array element"),
            (
                "[1,]",
                "invalid character ']' looking for beginning of value",
            ),
            ("{} x", "invalid character 'x' after top-level value"),
            ("01", "invalid character '1' after top-level value"),
            ("-x", "invalid character 'x' in numeric literal"),
            (
                "1.x",
                "invalid character 'x' after decimal point in numeric literal",
            ),
            (
                "1ex",
                "invalid character 'x' in exponent of numeric literal",
            ),
            ("tru", UNEXPECTED_END),
            (
                "trUe",
                "invalid character 'U' in literal true (expecting 'u')",
            ),
            (
                "nul1",
                "invalid character '1' in literal null (expecting 'l')",
            ),
            ("\"a\nb\"", "invalid character '\\n' in string literal"),
            ("\"\\q\"", "invalid character 'q' in string escape code"),
            (
                "\"\\u12g4\"",
                "invalid character 'g' in \\u hexadecimal character escape",
            ),
            (
                "'a'",
                "invalid character '\\'' looking for beginning of value",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                check_json_syntax(input.as_bytes()).err().as_deref(),
                Some(*want),
                "{input:?}"
            );
        }
        for ok in [
            "{}",
            "[]",
            " {\"a\": [1, -2.5e+3, true, false, null, \"\\u00e9\"]} ",
            "0",
            "-0.0",
        ] {
            assert_eq!(check_json_syntax(ok.as_bytes()), Ok(()), "{ok:?}");
        }
    }

    #[test]
    fn deep_nesting_is_rejected_without_recursion() {
        let deep = "[".repeat(20_000);
        assert_eq!(
            check_json_syntax(deep.as_bytes()),
            Err("invalid character '[' exceeded max depth".into())
        );
    }

    #[test]
    fn values_print_like_go_fmt() {
        let v = json!({"name": "a", "b": [1, 2.5, null, true], "c": {"x": 1e6}});
        assert_eq!(go_v(&v), "map[b:[1 2.5 <nil> true] c:map[x:1e+06] name:a]");
        assert_eq!(go_s(&json!("merge")), "merge");
        assert_eq!(go_s(&json!(1)), "%!s(int64=1)");
        assert_eq!(float_v(100000.0), "100000");
        assert_eq!(float_v(0.0001), "0.0001");
        assert_eq!(float_v(0.00001), "1e-05");
        assert_eq!(float_v(-1234567.0), "-1.234567e+06");
        assert_eq!(float_v(1.25), "1.25");
        assert_eq!(go_type(&json!({})), GO_MAP);
        assert_eq!(go_type(&Value::Null), "%!s(<nil>)");
    }

    #[test]
    fn atoi_matches_go() {
        assert_eq!(go_atoi("12"), Ok(12));
        assert_eq!(go_atoi("-3"), Ok(-3));
        assert_eq!(go_atoi("+4"), Ok(4));
        assert_eq!(
            go_atoi("x").err().as_deref(),
            Some("strconv.Atoi: parsing \"x\": invalid syntax")
        );
        assert_eq!(
            go_atoi("-").err().as_deref(),
            Some("strconv.Atoi: parsing \"-\": invalid syntax")
        );
        assert_eq!(
            go_atoi("99999999999999999999").err().as_deref(),
            Some("strconv.Atoi: parsing \"99999999999999999999\": value out of range")
        );
    }
}
