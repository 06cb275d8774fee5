//! Reading request bodies: size limit, then JSON, YAML or Kubernetes protobuf into a JSON
//! value.

use axum::body::Body;
use http_body::Body as _;
use http_body_util::BodyExt;
use k1s_apimachinery::Status;
use serde_json::Value;

use super::negotiation::BodyType;

/// Upstream's limit on request bodies.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// The error a request body yields once the request timeout has passed (set by the
/// serving layer); reading it answers 504 like upstream's timeout filter.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("request did not complete within requested timeout - context deadline exceeded")]
pub struct RequestTimeout;

/// Reads the whole body, refusing more than [`MAX_BODY_BYTES`].
pub async fn read(body: Body) -> Result<Vec<u8>, Status> {
    let too_large = || Status::request_entity_too_large(&format!("limit is {MAX_BODY_BYTES}"));
    // A Content-Length above the limit is refused before reading: upstream would answer
    // the same 413 after reading limit+1 bytes, and a client announcing 10 GiB but
    // sending nothing must not hold the request open until the timeout.
    if body.size_hint().lower() > MAX_BODY_BYTES as u64 {
        return Err(too_large());
    }
    let limited = http_body_util::Limited::new(body, MAX_BODY_BYTES);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes().to_vec()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large())
        }
        Err(e) if caused_by::<RequestTimeout>(e.as_ref()) => {
            Err(Status::timeout(&RequestTimeout.to_string(), 0))
        }
        Err(e) => Err(Status::bad_request(&format!(
            "error reading request body: {e}"
        ))),
    }
}

/// Whether `T` is `e` or anywhere in its chain of sources.
fn caused_by<T: std::error::Error + 'static>(e: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(e), |e| e.source()).any(|e| e.is::<T>())
}

/// Parses a JSON, YAML or protobuf document into a value.
pub fn parse(bytes: &[u8], ty: BodyType) -> Result<Value, Status> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Status::bad_request("Object 'Kind' is missing in ''"));
    }
    match ty {
        BodyType::Yaml | BodyType::ApplyPatch => parse_yaml(bytes),
        BodyType::Protobuf => parse_protobuf(bytes),
        _ => serde_json::from_slice(bytes).map_err(|e| {
            Status::bad_request(&format!("couldn't get version/kind; json parse error: {e}"))
        }),
    }
}

/// [`parse`] of an object body for a resource of `kind`: JSON that does not parse gets
/// upstream's decode error, naming the kind and showing the body's start (as text when
/// it opens like an object, in hex otherwise).
pub fn parse_object(bytes: &[u8], ty: BodyType, kind: &str) -> Result<Value, Status> {
    match parse(bytes, ty) {
        Err(_) if ty == BodyType::Json && !bytes.iter().all(u8::is_ascii_whitespace) => {
            let cause = crate::patch::gocompat::check_json_syntax(bytes)
                .err()
                .unwrap_or_else(|| {
                    serde_json::from_slice::<Value>(bytes)
                        .err()
                        .map(|e| e.to_string())
                        .unwrap_or_default()
                });
            Err(Status::bad_request(&format!(
                "the object provided is unrecognized (must be of type {kind}): couldn't get version/kind; json parse error: {cause} ({})",
                summarize(bytes)
            )))
        }
        other => other,
    }
}

/// Upstream's short view of a body in decode errors: its first 30 bytes.
fn summarize(bytes: &[u8]) -> String {
    const MAX: usize = 30;
    let (head, more) = if bytes.len() > MAX {
        (&bytes[..MAX], " ...")
    } else {
        (bytes, "")
    };
    if bytes.first() == Some(&b'{') {
        format!("{}{more}", String::from_utf8_lossy(head))
    } else {
        let hex: String = head.iter().map(|b| format!("{b:02x}")).collect();
        format!("{hex}{more}")
    }
}

/// Paths of keys repeated within one JSON object (`metadata.name`, `items[0].name`), as
/// upstream's strict decoder names them: at most 100, each once. Invalid JSON has none
/// (parsing reports it).
pub fn duplicate_fields(bytes: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let walk = Walk {
        path: String::new(),
        found: &mut found,
    };
    let _ = serde::de::DeserializeSeed::deserialize(walk, &mut de);
    found
}

/// Walks a JSON document without building it, noting repeated keys.
struct Walk<'a> {
    path: String,
    found: &'a mut Vec<String>,
}

/// Upstream's strict decoder stops collecting after this many errors.
const MAX_DUPLICATES: usize = 100;

impl<'de> serde::de::DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Walk { path, found } = self;
        let mut i = 0;
        loop {
            let item = Walk {
                path: format!("{path}[{i}]"),
                found: &mut *found,
            };
            if seq.next_element_seed(item)?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Walk { path, found } = self;
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let child = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if !seen.insert(key) && found.len() < MAX_DUPLICATES && !found.contains(&child) {
                found.push(child.clone());
            }
            map.next_value_seed(Walk {
                path: child,
                found: &mut *found,
            })?;
        }
        Ok(())
    }
}

/// Parses YAML (JSON is YAML too) into a value. A key repeated in a mapping keeps its
/// last value, as upstream's non-strict YAML decoding does; [`yaml_duplicates`] names them.
pub fn parse_yaml(bytes: &[u8]) -> Result<Value, Status> {
    if let Ok(v) = serde_json::from_slice::<Value>(bytes) {
        return Ok(v);
    }
    let options = serde_saphyr::options! {
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::LastWins,
    };
    serde_saphyr::from_slice_with_options::<Value>(bytes, options)
        .map_err(|e| Status::bad_request(&format!("error converting YAML to JSON: yaml: {e}")))
}

/// The keys repeated in the mappings of a YAML (or JSON) document, as upstream's strict
/// YAML decoding reports them: `line 11: key "foo" already set in map`, in document
/// order. A document that does not parse has none (its parse error is reported instead).
pub fn yaml_duplicates(bytes: &[u8]) -> Vec<String> {
    let options = serde_saphyr::options! {
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::PassThrough,
    };
    serde_saphyr::from_slice_with_options::<YamlDuplicates>(bytes, options)
        .map(|d| d.0)
        .unwrap_or_default()
}

/// The texts of the repeated keys under one YAML node (see [`yaml_duplicates`]).
#[derive(Default)]
struct YamlDuplicates(Vec<String>);

impl<'de> serde::Deserialize<'de> for YamlDuplicates {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(YamlDuplicatesVisitor)
    }
}

struct YamlDuplicatesVisitor;

impl<'de> serde::de::Visitor<'de> for YamlDuplicatesVisitor {
    type Value = YamlDuplicates;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a YAML document")
    }

    fn visit_bool<E>(self, _: bool) -> Result<YamlDuplicates, E> {
        Ok(YamlDuplicates::default())
    }

    fn visit_i64<E>(self, _: i64) -> Result<YamlDuplicates, E> {
        Ok(YamlDuplicates::default())
    }

    fn visit_u64<E>(self, _: u64) -> Result<YamlDuplicates, E> {
        Ok(YamlDuplicates::default())
    }

    fn visit_f64<E>(self, _: f64) -> Result<YamlDuplicates, E> {
        Ok(YamlDuplicates::default())
    }

    fn visit_str<E>(self, _: &str) -> Result<YamlDuplicates, E> {
        Ok(YamlDuplicates::default())
    }

    fn visit_bytes<E>(self, _: &[u8]) -> Result<YamlDuplicates, E> {
        Ok(YamlDuplicates::default())
    }

    fn visit_unit<E>(self) -> Result<YamlDuplicates, E> {
        Ok(YamlDuplicates::default())
    }

    fn visit_none<E>(self) -> Result<YamlDuplicates, E> {
        Ok(YamlDuplicates::default())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> Result<YamlDuplicates, A::Error> {
        let mut out = YamlDuplicates::default();
        while let Some(d) = seq.next_element::<YamlDuplicates>()? {
            out.0.extend(d.0);
        }
        Ok(out)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> Result<YamlDuplicates, A::Error> {
        let mut out = YamlDuplicates::default();
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<serde_saphyr::Spanned<Value>>()? {
            // go-yaml prints a string key quoted and any other key as it is.
            let text = match &key.value {
                Value::String(s) => k1s_apimachinery::goformat::quote(s),
                other => other.to_string(),
            };
            if !seen.insert(text.clone()) {
                out.0.push(format!(
                    "line {}: key {text} already set in map",
                    key.referenced.line()
                ));
            }
            out.0.extend(map.next_value::<YamlDuplicates>()?.0);
        }
        Ok(out)
    }
}

/// Decodes a Kubernetes protobuf document of a built-in kind into its JSON value, which
/// then takes the same path as a JSON body.
pub fn parse_protobuf(bytes: &[u8]) -> Result<Value, Status> {
    crate::schema::protobuf::decode_object(bytes).map_err(|e| Status::bad_request(&e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use bytes::Bytes;
    use http_body::{Frame, SizeHint};

    use super::*;

    /// A body that announces `len` bytes and then either never sends them or fails.
    struct Announced {
        len: u64,
        fail: bool,
    }

    impl http_body::Body for Announced {
        type Data = Bytes;
        type Error = RequestTimeout;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, RequestTimeout>>> {
            if self.fail {
                Poll::Ready(Some(Err(RequestTimeout)))
            } else {
                Poll::Pending
            }
        }

        fn size_hint(&self) -> SizeHint {
            SizeHint::with_exact(self.len)
        }
    }

    #[test]
    fn yaml_keeps_the_last_of_repeated_keys_and_names_them_by_line() {
        let doc =
            b"\nkind: K\nspec:\n  foo: foo1\n  foo: foo2\n  ports:\n  - name: a\n    name: b\n";
        let v = parse_yaml(doc).unwrap();
        assert_eq!(v["spec"]["foo"], "foo2");
        assert_eq!(v["spec"]["ports"][0]["name"], "b");
        assert_eq!(
            yaml_duplicates(doc),
            [
                "line 5: key \"foo\" already set in map",
                "line 8: key \"name\" already set in map"
            ]
        );
        assert!(yaml_duplicates(b"a: 1\nb: {a: 2}\n").is_empty());
        assert_eq!(
            yaml_duplicates(br#"{"a": 1, "a": 2}"#),
            ["line 1: key \"a\" already set in map"]
        );
        assert!(yaml_duplicates(b"a: [unclosed").is_empty());
    }

    #[test]
    fn duplicate_fields_are_named_by_path_like_upstream() {
        // Strict field validation let `{"name":"a","name":"b"}` through as "b".
        let doc =
            br#"{"a":1,"a":2,"m":{"x":1,"y":{"z":1,"z":2},"x":3},"l":[{"k":1,"k":1}],"ok":[1,1]}"#;
        assert_eq!(duplicate_fields(doc), ["a", "m.y.z", "m.x", "l[0].k"]);
        assert!(duplicate_fields(br#"{"a":{"a":{"a":1}}}"#).is_empty());
        assert!(duplicate_fields(b"{not json").is_empty());
        let many = format!("{{{}}}", vec![r#""k":1"#; 1000].join(","));
        assert_eq!(duplicate_fields(many.as_bytes()), ["k"]);
    }

    #[tokio::test]
    async fn content_length_above_the_limit_is_413_before_any_byte_is_read() {
        // A client announcing 10 GiB and sending nothing held the request open forever.
        let body = Body::new(Announced {
            len: 10 << 30,
            fail: false,
        });
        let read = tokio::time::timeout(std::time::Duration::from_secs(5), read(body)).await;
        let err = read.expect("answered at once").unwrap_err();
        assert_eq!(
            (err.code(), err.reason.as_str()),
            (413, "RequestEntityTooLarge")
        );
    }

    #[tokio::test]
    async fn a_body_cut_off_by_the_request_timeout_is_504_timeout() {
        // A client that stops mid-body gets upstream's timeout answer, not a 400.
        let body = Body::new(Announced {
            len: 10,
            fail: true,
        });
        let err = read(body).await.unwrap_err();
        assert_eq!((err.code(), err.reason.as_str()), (504, "Timeout"));
    }
}
