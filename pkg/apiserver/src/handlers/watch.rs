//! WATCH: a chunked stream of `{"type": …, "object": …}` lines from the watch cache, with
//! selectors applied to both the old and new state, initial events, bookmarks, Table
//! rows for `kubectl get -w`, and a 410 ERROR event when the start is too old.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{StatusCode, header};
use k1s_apimachinery::Status;
use k1s_store::{Event, EventKind, KeyValue, Revision, StoreError, WatchStream};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use super::list::list_options;
use super::negotiation::{Output, parse_accept, resource_output};
use super::watch_memo::WatchMemo;
use super::{Call, query_flag};
use crate::registry::Resource;
use crate::registry::generic::{GenericStore, ListOptions, parse_resource_version};
use crate::registry::table::{TablePrinter, partial_metadata};

/// How often bookmarks are sent to watchers that allow them.
const BOOKMARK_EVERY: Duration = Duration::from_secs(30);

struct Encoder {
    output: Output,
    printer: TablePrinter,
    include: String,
    first: bool,
}

impl Encoder {
    fn object(&mut self, obj: &Value) -> Value {
        match self.output {
            Output::Table => {
                let t = self.printer.table(
                    std::slice::from_ref(obj),
                    &self.include,
                    Map::new(),
                    self.first,
                );
                self.first = false;
                t
            }
            Output::PartialMetadata => partial_metadata(obj),
            Output::Json | Output::Yaml => obj.clone(),
        }
    }

    fn line(&mut self, kind: &str, obj: &Value) -> Bytes {
        let object = if kind == "BOOKMARK" || kind == "ERROR" {
            serde_json::to_vec(obj).unwrap_or_default()
        } else {
            self.encode_json(obj).unwrap_or_default()
        };
        event_line(kind, &object)
    }

    /// The JSON of `obj` in this output; a whole object is written as it is, not
    /// copied first (a watch encodes every event of its resource).
    fn encode_json(&mut self, obj: &Value) -> serde_json::Result<Vec<u8>> {
        match self.output {
            Output::Json | Output::Yaml => serde_json::to_vec(obj),
            Output::Table | Output::PartialMetadata => serde_json::to_vec(&self.object(obj)),
        }
    }

    /// The JSON of a stored object in this output spliced from its stored bytes, where
    /// the output and the resource allow (see `GenericStore::served_json`).
    fn spliced(&self, generic: &GenericStore, res: &Resource, kv: &KeyValue) -> Option<Vec<u8>> {
        match self.output {
            Output::Json | Output::Yaml => generic.served_json(res, kv),
            Output::PartialMetadata => generic.served_metadata_json(res, kv),
            Output::Table => None,
        }
    }

    /// Whether every watcher encodes an object alike in this output (no per-watcher
    /// state such as a Table's column header), so the encoding can be shared.
    fn shareable(&self) -> bool {
        matches!(self.output, Output::Json | Output::PartialMetadata)
    }
}

/// One watch event line around an encoded object.
fn event_line(kind: &str, object: &[u8]) -> Bytes {
    let mut bytes = Vec::with_capacity(object.len() + kind.len() + 24);
    bytes.extend_from_slice(b"{\"type\":\"");
    bytes.extend_from_slice(kind.as_bytes());
    bytes.extend_from_slice(b"\",\"object\":");
    bytes.extend_from_slice(object);
    bytes.extend_from_slice(b"}\n");
    Bytes::from(bytes)
}

fn error_event(s: &Status) -> Value {
    serde_json::to_value(s).unwrap_or(Value::Null)
}

struct Watcher {
    generic: GenericStore,
    memo: Arc<WatchMemo>,
    /// The memo's name for what this watcher sends (`None`: not shared).
    form: Option<String>,
    resource: Arc<Resource>,
    opts: ListOptions,
    encoder: Encoder,
    tx: mpsc::Sender<Result<Bytes, Infallible>>,
}

impl Watcher {
    async fn send(&mut self, kind: &str, obj: &Value) -> bool {
        let line = self.encoder.line(kind, obj);
        self.tx.send(Ok(line)).await.is_ok()
    }

    fn bookmark(&self, rev: Revision, initial_end: bool) -> Value {
        let info = &self.resource.info;
        let mut meta = json!({"resourceVersion": rev.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        json!({"kind": info.kind, "apiVersion": info.api_version(), "metadata": meta})
    }

    /// The ADDED line of an object of the initial state, if this watcher sees it.
    fn initial_line(&mut self, kv: &KeyValue) -> Option<Bytes> {
        let filtered = self.opts.label_selector.is_some() || self.opts.field_selector.is_some();
        let obj = if filtered || self.form.is_none() {
            let obj = self.generic.decode_stored(&self.resource, kv).ok()?;
            if !self.generic.matches(&self.resource, &obj, &self.opts) {
                return None;
            }
            Some(obj)
        } else {
            None
        };
        self.encode("ADDED", kv, obj)
    }

    /// The line of `kind` for `kv` (decoded already or not).
    fn encode(&mut self, kind: &str, kv: &KeyValue, obj: Option<Value>) -> Option<Bytes> {
        let Some(form) = &self.form else {
            if let Some(object) = self.encoder.spliced(&self.generic, &self.resource, kv) {
                return Some(event_line(kind, &object));
            }
            let obj = match obj {
                Some(o) => o,
                None => self.generic.decode_stored(&self.resource, kv).ok()?,
            };
            return Some(self.encoder.line(kind, &obj));
        };
        let (generic, res, encoder) = (&self.generic, &self.resource, &mut self.encoder);
        let object = self.memo.get_or_encode(kv, form, || {
            if let Some(object) = encoder.spliced(generic, res, kv) {
                return Some(super::watch_memo::fitted(object));
            }
            let obj = match obj {
                Some(o) => o,
                None => generic.decode_stored(res, kv).ok()?,
            };
            encoder
                .encode_json(&obj)
                .ok()
                .map(super::watch_memo::fitted)
        })?;
        Some(event_line(kind, &object))
    }

    /// Translates one store event into the line this watcher should send, if any.
    fn translate(&mut self, ev: &Event) -> Option<Bytes> {
        let filtered = self.opts.label_selector.is_some() || self.opts.field_selector.is_some();
        if !filtered && self.form.is_some() {
            // Every event is seen as it is: the encoded object is the same for each
            // watcher of this resource, so one of them encodes it for all.
            let kind = match ev.kind {
                EventKind::Created => "ADDED",
                EventKind::Updated => "MODIFIED",
                EventKind::Deleted => "DELETED",
            };
            return self.encode(kind, &ev.kv, None);
        }
        let (kind, obj) = self.decide(ev)?;
        self.encode(kind, &ev.kv, Some(obj))
    }

    /// Whether this (filtered) watcher sees the event, and as what.
    fn decide(&self, ev: &Event) -> Option<(&'static str, Value)> {
        let res = &self.resource;
        let new = self.generic.decode_stored(res, &ev.kv).ok()?;
        let filtered = self.opts.label_selector.is_some() || self.opts.field_selector.is_some();
        let new_matches = self.generic.matches(res, &new, &self.opts);
        match ev.kind {
            EventKind::Created => new_matches.then_some(("ADDED", new)),
            EventKind::Deleted => {
                let old_matches = match (&ev.prev, filtered) {
                    (Some(prev), true) => self
                        .generic
                        .decode_stored(res, prev)
                        .map(|p| self.generic.matches(res, &p, &self.opts))
                        .unwrap_or(new_matches),
                    _ => new_matches,
                };
                old_matches.then_some(("DELETED", new))
            }
            EventKind::Updated => {
                let old_matches = match (&ev.prev, filtered) {
                    (Some(prev), true) => self
                        .generic
                        .decode_stored(res, prev)
                        .map(|p| self.generic.matches(res, &p, &self.opts))
                        .unwrap_or(false),
                    _ => true,
                };
                match (old_matches, new_matches) {
                    (true, true) => Some(("MODIFIED", new)),
                    (false, true) => Some(("ADDED", new)),
                    (true, false) => Some(("DELETED", new)),
                    (false, false) => None,
                }
            }
        }
    }

    async fn run(
        mut self,
        mut stream: WatchStream,
        initial: Vec<Arc<KeyValue>>,
        initial_end: Option<Revision>,
        bookmarks: bool,
        deadline: Duration,
    ) {
        // Decoded one at a time: a watcher that lists 30k pods never holds them all
        // decoded at once.
        for kv in initial {
            if let Some(line) = self.initial_line(&kv)
                && self.tx.send(Ok(line)).await.is_err()
            {
                return;
            }
        }
        if let Some(rev) = initial_end {
            let b = self.bookmark(rev, true);
            if !self.send("BOOKMARK", &b).await {
                return;
            }
        }
        let end = tokio::time::sleep(deadline);
        tokio::pin!(end);
        let mut ticker = tokio::time::interval(BOOKMARK_EVERY);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = &mut end => return,
                _ = self.tx.closed() => return,
                _ = ticker.tick(), if bookmarks => {
                    let b = self.bookmark(stream.position(), false);
                    if !self.send("BOOKMARK", &b).await {
                        return;
                    }
                }
                next = stream.next() => match next {
                    Ok(ev) => {
                        if let Some(line) = self.translate(&ev)
                            && self.tx.send(Ok(line)).await.is_err()
                        {
                            return;
                        }
                    }
                    Err(StoreError::Compacted { requested, oldest }) => {
                        let s = Status::resource_expired(&format!("too old resource version: {requested} ({oldest})"));
                        let e = error_event(&s);
                        let _ = self.send("ERROR", &e).await;
                        return;
                    }
                    Err(_) => return,
                },
            }
        }
    }
}

/// Serves `watch`.
pub async fn watch(call: Call) -> Result<Response, Status> {
    let mut output = resource_output(&parse_accept(call.header(header::ACCEPT)))?;
    if output == Output::Yaml {
        output = Output::Json;
    }
    let generic = call.server.generic.clone();
    let res = call.resource.clone();
    let mut opts = list_options(&generic, &res, &call.query)?;
    if let Some(name) = &call.path.name {
        let by_name = k1s_apimachinery::FieldSelector::parse(&format!("metadata.name={name}"))
            .map_err(|e| Status::bad_request(&e.to_string()))?;
        opts.field_selector = Some(match opts.field_selector.take() {
            Some(fs) => k1s_apimachinery::FieldSelector::parse(&format!("{fs},{by_name}"))
                .map_err(|e| Status::bad_request(&e.to_string()))?,
            None => by_name,
        });
    }
    // Any value but "false"/"0" is true, as upstream reads booleans.
    let send_initial = call
        .query
        .contains_key("sendInitialEvents")
        .then(|| query_flag(&call.query, "sendInitialEvents"));
    let bookmarks = query_flag(&call.query, "allowWatchBookmarks");
    if send_initial == Some(true)
        && (opts.resource_version_match.as_deref() != Some("NotOlderThan") || !bookmarks)
    {
        return Err(Status::invalid(
            &k1s_apimachinery::GroupKind::new("meta.k8s.io", "ListOptions"),
            "",
            &[k1s_apimachinery::FieldError::forbidden(
                &k1s_apimachinery::Path::new("resourceVersionMatch"),
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            )],
        ));
    }
    let timeout = match call
        .query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
    {
        Some(t) if t > 0 => Duration::from_secs(t),
        _ => Duration::from_secs(1800 + rand::random::<u64>() % 1800),
    };
    let prefix = res.info.collection_prefix(call.namespace());
    let store = generic.store().clone();
    let rv = opts.resource_version.clone().unwrap_or_default();
    let (tx, rx) = mpsc::channel(64);
    let info = &res.info;
    let encoder = Encoder {
        output,
        printer: res.strategy.table(&info.group, &info.kind),
        include: call
            .query
            .get("includeObject")
            .cloned()
            .unwrap_or_else(|| "Metadata".into()),
        first: true,
    };
    // The shared encoding is the served form of the stored object: only where no
    // conversion stands between them (a conversion may change with its definition, and
    // a CRD's webhook converts even for its storage version).
    let form = (encoder.shareable() && res.conversion.is_none())
        .then(|| format!("{}/{}/{:?}", info.api_version(), info.kind, encoder.output));
    let mut watcher = Watcher {
        generic: generic.clone(),
        memo: call.server.watch_memo.clone(),
        form,
        resource: res.clone(),
        opts,
        encoder,
        tx,
    };
    // Initial state and start revision come from one snapshot of the cache.
    let (initial, stream, initial_end) = if rv.is_empty() || rv == "0" || send_initial == Some(true)
    {
        if !rv.is_empty() && rv != "0" {
            generic
                .wait_for_revision(parse_resource_version(&rv)?)
                .await?;
        }
        let wants_initial = send_initial != Some(false);
        let (items, at, _) = store.cache().list(&prefix, None, 0);
        let stream = store
            .watch(&prefix, at)
            .map_err(|e| Status::internal_error(&e.to_string()))?;
        let objs = if wants_initial { items } else { Vec::new() };
        let end = (send_initial == Some(true)).then_some(at);
        (objs, Ok(stream), end)
    } else {
        let from = parse_resource_version(&rv)?;
        generic.wait_for_revision(from).await?;
        (Vec::new(), store.watch(&prefix, from), None)
    };
    match stream {
        Ok(stream) => {
            tokio::spawn(watcher.run(stream, initial, initial_end, bookmarks, timeout));
        }
        Err(StoreError::Compacted { requested, oldest }) => {
            // Upstream answers 200 and then a single ERROR event with 410.
            let s = Status::resource_expired(&format!(
                "too old resource version: {requested} ({oldest})"
            ));
            let e = error_event(&s);
            tokio::spawn(async move {
                let _ = watcher.send("ERROR", &e).await;
            });
        }
        Err(e) => return Err(Status::internal_error(&e.to_string())),
    }
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::OK;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(r)
}
