//! Upstream's rendering of Go values that are not strings or numbers in validation
//! messages. `field.Error` prints a struct, slice or map bad value with `%#v`
//! (`roleRef: Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io",
//! Kind:"ClusterRole", Name:"view"}: cannot change roleRef`); a JSON value would print
//! as JSON here, so these helpers build the Go text and [`invalid_go`] puts it in the
//! error as upstream shows it.

use k1s_apimachinery::goformat::quote;
use k1s_apimachinery::{ErrorType, FieldError, Path};
use serde_json::{Map, Value};

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

/// The list at `key` of `obj`, distinguishing absent (Go's nil slice) from empty.
pub fn list_of<'a>(obj: &'a Value, key: &str) -> Option<&'a [Value]> {
    obj.get(key).and_then(Value::as_array).map(Vec::as_slice)
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
    use serde_json::json;

    use super::*;

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
