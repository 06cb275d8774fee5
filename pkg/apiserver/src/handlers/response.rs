//! Building HTTP responses: Status errors, objects in the negotiated form, warnings.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use k1s_apimachinery::Status;
use serde_json::{Map, Value, json};

use super::negotiation::Output;
use crate::registry::table::{TablePrinter, partial_metadata};

/// A JSON response, ending with a newline as upstream's encoder writes it.
pub fn json(code: StatusCode, body: &Value) -> Response {
    let mut bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    bytes.push(b'\n');
    bytes_response(code, "application/json", bytes)
}

/// A response with a body of the given type.
pub fn bytes_response(code: StatusCode, content_type: &str, body: Vec<u8>) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = code;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

/// A Status error (or success) as its HTTP response.
pub fn status(s: &Status) -> Response {
    let code = StatusCode::from_u16(s.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_value(s).unwrap_or_else(|_| json!({}));
    let mut r = json(code, &body);
    // Upstream tells clients when to come back (a refused eviction, a throttled request).
    if let Some(secs) = s
        .details
        .as_ref()
        .map(|d| d.retry_after_seconds)
        .filter(|n| *n > 0)
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// Upstream's budget for the text of all warnings of one response, in characters …
const WARNING_TOTAL_CHARS: usize = 4 * 1024;
/// … and the length every warning is cut to once that budget is exceeded.
const WARNING_ITEM_CHARS: usize = 256;

/// Adds `Warning: 299 - "..."` headers, as upstream sends them.
pub fn with_warnings(mut r: Response, warnings: &[String]) -> Response {
    for header in warning_headers(warnings) {
        if let Ok(v) = HeaderValue::from_str(&header) {
            r.headers_mut().append(header::WARNING, v);
        }
    }
    r
}

/// The `Warning` header values for `warnings`, as upstream's warning recorder writes them:
/// empty and repeated texts are dropped; once the texts together exceed 4096 characters
/// every warning so far is cut to 256 characters and the later ones too, until even the
/// cut ones fill the budget, after which the rest are left out. A text with a control
/// character cannot be a header and is skipped (it still counts as seen).
pub fn warning_headers(warnings: &[String]) -> Vec<String> {
    capped_warning_headers(warnings, WARNING_TOTAL_CHARS, WARNING_ITEM_CHARS)
}

/// [`warning_headers`] with the budget and the cut length given.
fn capped_warning_headers(warnings: &[String], total: usize, item: usize) -> Vec<String> {
    let cut = |text: &str| -> (String, usize) {
        let n = text.chars().count();
        if n > item {
            (text.chars().take(item).collect(), item)
        } else {
            (text.to_string(), n)
        }
    };
    let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
    let mut ordered: Vec<&str> = Vec::new();
    let mut headers: Vec<String> = Vec::new();
    let mut written = 0;
    let mut truncating = false;
    for text in warnings.iter().map(String::as_str) {
        if text.is_empty() {
            continue;
        }
        if truncating && written >= total {
            break;
        }
        if !seen.insert(text) {
            continue;
        }
        ordered.push(text);
        let (text, len) = if truncating {
            cut(text)
        } else {
            (text.to_string(), text.chars().count())
        };
        let Some(header) = warning_header(&text) else {
            continue;
        };
        if truncating || written + len <= total {
            written += len;
            headers.push(header);
            continue;
        }
        // Over budget: start again with every warning so far cut short.
        truncating = true;
        written = 0;
        headers.clear();
        for earlier in &ordered {
            let (text, len) = cut(earlier);
            if let Some(header) = warning_header(&text) {
                written += len;
                headers.push(header);
            }
        }
    }
    headers
}

/// `299 - "<text>"` with `"` and `\` escaped; `None` for text with control characters,
/// which upstream refuses to put in a header.
fn warning_header(text: &str) -> Option<String> {
    if text.chars().any(char::is_control) {
        return None;
    }
    let mut out = String::with_capacity(text.len() + 8);
    out.push_str("299 - \"");
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Some(out)
}

/// Serializes to YAML the way kubectl's `-o yaml` would read it back.
pub fn to_yaml(v: &Value) -> Vec<u8> {
    serde_saphyr::to_string(v)
        .map(String::into_bytes)
        .unwrap_or_default()
}

/// One object in the negotiated representation.
pub fn object(
    code: StatusCode,
    obj: &Value,
    output: &Output,
    printer: &TablePrinter,
    include: &str,
) -> Response {
    match output {
        Output::Json => json(code, obj),
        Output::Yaml => bytes_response(code, "application/yaml", to_yaml(obj)),
        Output::PartialMetadata => json(code, &partial_metadata(obj)),
        Output::Table => {
            let mut meta = Map::new();
            if let Some(rv) = obj.pointer("/metadata/resourceVersion") {
                meta.insert("resourceVersion".into(), rv.clone());
            }
            json(
                code,
                &printer.table(std::slice::from_ref(obj), include, meta, true),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn warnings_are_deduplicated_escaped_and_skip_empty_or_unprintable_text() {
        let h = warning_headers(&texts(&[
            "",
            "one",
            "one",
            "say \"hi\" \\ there",
            "two\nlines",
            "Iñtërnâtiônàlizætiøn",
        ]));
        assert_eq!(
            h,
            [
                r#"299 - "one""#,
                r#"299 - "say \"hi\" \\ there""#,
                r#"299 - "Iñtërnâtiônàlizætiøn""#,
            ]
        );
    }

    #[test]
    fn warnings_over_the_budget_are_cut_then_dropped() {
        // A budget of 25 characters and cuts at 5, to see each stage.
        let mut input = texts(&["aaaaaaaaaa", "aaaaaaaaaa", "bb", "ccc", "Iñtërnâtiô"]);
        assert_eq!(
            capped_warning_headers(&input, 25, 5),
            [
                r#"299 - "aaaaaaaaaa""#,
                r#"299 - "bb""#,
                r#"299 - "ccc""#,
                r#"299 - "Iñtërnâtiô""#,
            ]
        );
        // "e" brings the total to 26: everything so far is cut to 5 (15 characters),
        // later warnings are cut as they come until 25 is reached, then dropped.
        input.extend(texts(&["e", "ffffffffff", "ffffffffff", "gggggggggg", "h"]));
        assert_eq!(
            capped_warning_headers(&input, 25, 5),
            [
                r#"299 - "aaaaa""#,
                r#"299 - "bb""#,
                r#"299 - "ccc""#,
                r#"299 - "Iñtër""#,
                r#"299 - "e""#,
                r#"299 - "fffff""#,
                r#"299 - "ggggg""#,
            ]
        );
    }

    #[test]
    fn real_budget_is_4k_characters_with_256_character_cuts() {
        // 20 distinct warnings of 300 characters: 6000 in all, over 4096, so each is cut
        // to 256; 16 of them fill the budget exactly and the last 4 are dropped.
        let input: Vec<String> = (0..20)
            .map(|i| format!("{i:02}{}", "x".repeat(298)))
            .collect();
        let h = warning_headers(&input);
        assert_eq!(h.len(), 16);
        assert!(h.iter().all(|v| v.len() == "299 - \"\"".len() + 256));
        let r = with_warnings(Response::new(Body::empty()), &input);
        assert_eq!(r.headers().get_all(header::WARNING).iter().count(), 16);
    }
}
