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

/// Parses YAML (JSON is YAML too) into a value.
pub fn parse_yaml(bytes: &[u8]) -> Result<Value, Status> {
    if let Ok(v) = serde_json::from_slice::<Value>(bytes) {
        return Ok(v);
    }
    serde_saphyr::from_slice::<Value>(bytes)
        .map_err(|e| Status::bad_request(&format!("error converting YAML to JSON: yaml: {e}")))
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
