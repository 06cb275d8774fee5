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
use k1s_store::{Event, EventKind, Revision, StoreError, WatchStream};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use super::list::list_options;
use super::negotiation::{Output, parse_accept, resource_output};
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
            obj.clone()
        } else {
            self.object(obj)
        };
        let mut bytes =
            serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
        bytes.push(b'\n');
        Bytes::from(bytes)
    }
}

fn error_event(s: &Status) -> Value {
    serde_json::to_value(s).unwrap_or(Value::Null)
}

struct Watcher {
    generic: GenericStore,
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

    /// Translates one store event into what this watcher should see, if anything.
    fn translate(&self, ev: &Event) -> Option<(&'static str, Value)> {
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
        initial: Vec<Value>,
        initial_end: Option<Revision>,
        bookmarks: bool,
        deadline: Duration,
    ) {
        for obj in initial {
            if !self.send("ADDED", &obj).await {
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
                        if let Some((kind, obj)) = self.translate(&ev)
                            && !self.send(kind, &obj).await
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
    let mut watcher = Watcher {
        generic: generic.clone(),
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
        let mut objs = Vec::new();
        if wants_initial {
            for kv in &items {
                let obj = generic.decode_stored(&res, kv)?;
                if generic.matches(&res, &obj, &watcher.opts) {
                    objs.push(obj);
                }
            }
        }
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
