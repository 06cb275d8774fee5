//! etcd backend: the store on an etcd v3 cluster, laid out as kube-apiserver lays it out,
//! so several k1s servers can share one datastore.
//!
//! Keys are the store's keys (`/registry/<resource>/<namespace>/<name>`) under an optional
//! prefix; revisions are etcd's: an object's resourceVersion is its key's mod revision.
//! Every write is one transaction guarded on the key's mod revision (create: "absent",
//! update and delete: "unchanged since `expected`"). One etcd watch over the prefix, with
//! progress notifications, feeds the watch cache with the writes of every server; a write
//! is acknowledged once that watch has delivered it, so a client reads its own writes.
//! The watch asks for previous values only when the sink does not hold them itself (the
//! watch cache does): etcd reads the old value again for every update it sends with one. A consistent list asks etcd for its current revision and waits
//! (requesting a progress notification) until the watch has delivered it, as
//! kube-apiserver's consistent list from its cache does. History is compacted as
//! kube-apiserver compacts it: every interval, to the revision seen one interval before,
//! coordinated between servers through the `compact_rev_key` key.

#[cfg(any(test, feature = "test-util"))]
pub mod testing;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, Txn, TxnOp, TxnOpResponse,
    WatchOptions,
};
use parking_lot::Mutex;
use tokio::sync::{Notify, OnceCell};
use tokio::task::JoinHandle;

use crate::backend::{Backend, BackendInfo, CheckReport, EventSink, ListPage};
use crate::waiters::RevisionWaiters;
use crate::{Event, EventKind, KeyValue, Revision, StoreError, WriteOp};

/// Keys read per range request when listing everything (bounds one response's size).
const PAGE: i64 = 500;
/// Largest gRPC message accepted from etcd: a page of values up to etcd's request limit.
const MAX_MESSAGE: usize = 512 << 20;
/// How long a consistent read waits for the watch to catch up before etcd answers it.
const FRESH_TIMEOUT: Duration = Duration::from_secs(3);
/// kube-apiserver's default `--etcd-compaction-interval`.
pub const DEFAULT_COMPACTION_INTERVAL: Duration = Duration::from_secs(300);
/// Where the system's trust store lives on Debian, for https endpoints without a CA file.
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// How to reach an etcd cluster.
#[derive(Debug, Clone)]
pub struct EtcdOptions {
    /// Client URLs (`https://host:2379` or `http://host:2379`), all of one scheme.
    pub endpoints: Vec<String>,
    /// Prepended to every key (empty: keys are `/registry/...` as kube-apiserver's
    /// default `--etcd-prefix`).
    pub prefix: String,
    /// CA bundle that signed the etcd servers' certificates (`--datastore-cafile`).
    pub ca_file: Option<PathBuf>,
    /// Client certificate (`--datastore-certfile`).
    pub cert_file: Option<PathBuf>,
    /// Client key (`--datastore-keyfile`).
    pub key_file: Option<PathBuf>,
    /// How often history is compacted; zero turns periodic compaction off.
    pub compaction_interval: Duration,
}

impl EtcdOptions {
    /// Options for the comma-separated client URLs of `--datastore-endpoint`.
    pub fn new(endpoints: &str) -> Self {
        Self {
            endpoints: endpoints
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_string)
                .collect(),
            prefix: String::new(),
            ca_file: None,
            cert_file: None,
            key_file: None,
            compaction_interval: DEFAULT_COMPACTION_INTERVAL,
        }
    }

    /// Whether `endpoint` names etcd (`http://` or `https://` URLs).
    pub fn is_etcd_endpoint(endpoint: &str) -> bool {
        endpoint.starts_with("http://") || endpoint.starts_with("https://")
    }
}

/// Positions the watch task publishes for writers, readers and `info()`.
struct Shared {
    /// The endpoints, for error messages.
    endpoints: String,
    /// The newest revision handed to the sink (events or progress), and the writers and
    /// readers waiting for theirs.
    delivered: RevisionWaiters,
    /// The sink, where it counts the live bytes itself (the watch then carries no
    /// previous values to count them here).
    counting_sink: OnceLock<Arc<dyn EventSink>>,
    /// The newest compaction point known (ours, or learned from etcd's answers).
    compacted: AtomicI64,
    live_keys: AtomicU64,
    live_bytes: AtomicU64,
    disk_bytes: AtomicU64,
    /// Wakes the watch task to ask etcd for a progress notification.
    want_progress: Notify,
    /// `(mod revision, create revision)` of the newest updates the watch delivered, in
    /// revision order: an update learns its key's create revision here instead of asking
    /// etcd for the previous value (a read inside every update transaction).
    recent_updates: Mutex<std::collections::VecDeque<(Revision, Revision)>>,
}

/// Updates remembered in [`Shared::recent_updates`]: a writer looks its revision up just
/// after the watch delivered it, so a few thousand cover even busy shared datastores; a
/// miss costs one read at that revision.
const RECENT_UPDATES: usize = 4096;

impl Shared {
    /// Remembers the create revision of an update the watch delivered.
    fn remember_update(&self, modified: Revision, created: Revision) {
        let mut recent = self.recent_updates.lock();
        if recent.len() == RECENT_UPDATES {
            recent.pop_front();
        }
        recent.push_back((modified, created));
    }

    /// The create revision of the update at `modified`, if still remembered.
    fn created_of(&self, modified: Revision) -> Option<Revision> {
        let recent = self.recent_updates.lock();
        let i = recent.partition_point(|(m, _)| *m < modified);
        recent
            .get(i)
            .filter(|(m, _)| *m == modified)
            .map(|(_, c)| *c)
    }
}

/// The etcd [`Backend`].
pub struct EtcdBackend {
    options: EtcdOptions,
    connect: ConnectOptions,
    client: OnceCell<Client>,
    shared: Arc<Shared>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

fn unavailable(message: impl Into<String>) -> StoreError {
    StoreError::Unavailable {
        message: message.into(),
    }
}

fn read_file(what: &str, path: &PathBuf) -> Result<Vec<u8>, StoreError> {
    std::fs::read(path)
        .map_err(|e| unavailable(format!("cannot read {what} {}: {e}", path.display())))
}

/// The first key after every key starting with `prefix` (etcd's range end; `\0` = no end).
fn range_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

impl EtcdBackend {
    /// Checks the options and reads the TLS files; connects on first use.
    pub fn new(options: EtcdOptions) -> Result<Self, StoreError> {
        if options.endpoints.is_empty() {
            return Err(unavailable("no etcd endpoint given"));
        }
        let https = options.endpoints[0].starts_with("https://");
        for e in &options.endpoints {
            if !EtcdOptions::is_etcd_endpoint(e) {
                return Err(unavailable(format!(
                    "etcd endpoint {e:?} is not an http:// or https:// URL"
                )));
            }
            if e.starts_with("https://") != https {
                return Err(unavailable(
                    "etcd endpoints mix http:// and https://; use one scheme",
                ));
            }
        }
        let mut connect = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(10))
            .with_keep_alive_while_idle(true);
        if https {
            let ca = match &options.ca_file {
                Some(p) => read_file("--datastore-cafile", p)?,
                None => read_file("the system trust store", &PathBuf::from(SYSTEM_ROOTS))?,
            };
            let mut tls = etcd_client::TlsOptions::new()
                .ca_certificate(etcd_client::Certificate::from_pem(ca));
            match (&options.cert_file, &options.key_file) {
                (Some(c), Some(k)) => {
                    tls = tls.identity(etcd_client::Identity::from_pem(
                        read_file("--datastore-certfile", c)?,
                        read_file("--datastore-keyfile", k)?,
                    ));
                }
                (None, None) => {}
                _ => {
                    return Err(unavailable(
                        "--datastore-certfile and --datastore-keyfile go together",
                    ));
                }
            }
            connect = connect.with_tls(tls);
        } else if options.ca_file.is_some() || options.cert_file.is_some() {
            return Err(unavailable(
                "--datastore-cafile/--datastore-certfile need https:// etcd endpoints",
            ));
        }
        let endpoints = options.endpoints.join(",");
        Ok(Self {
            options,
            connect,
            client: OnceCell::new(),
            shared: Arc::new(Shared {
                endpoints,
                delivered: RevisionWaiters::default(),
                counting_sink: OnceLock::new(),
                compacted: AtomicI64::new(0),
                live_keys: AtomicU64::new(0),
                live_bytes: AtomicU64::new(0),
                disk_bytes: AtomicU64::new(0),
                want_progress: Notify::new(),
                recent_updates: Mutex::new(std::collections::VecDeque::new()),
            }),
            tasks: Mutex::new(Vec::new()),
        })
    }

    async fn client(&self) -> Result<Client, StoreError> {
        self.client
            .get_or_try_init(|| async {
                Client::connect(&self.options.endpoints, Some(self.connect.clone()))
                    .await
                    .map_err(|e| {
                        unavailable(format!(
                            "cannot connect to etcd at {}: {e}",
                            self.options.endpoints.join(",")
                        ))
                    })
            })
            .await
            .cloned()
    }

    fn layout(&self) -> Layout {
        Layout {
            prefix: self.options.prefix.clone(),
        }
    }

    /// Maps an etcd error on a read or write at `requested` to the store's outcome.
    fn error(&self, e: etcd_client::Error, requested: Revision) -> StoreError {
        map_error(&self.shared, e, requested)
    }

    /// Waits until the watch has handed revision `rev` to the sink.
    async fn delivered(&self, rev: Revision) {
        self.shared.delivered.wait_for(rev).await;
    }

    /// The create revision of the key `key` an update just wrote at `rev`: from the watch
    /// once it has delivered `rev`, else read from etcd at that revision.
    async fn created_of(
        &self,
        kv: &mut etcd_client::KvClient,
        key: &[u8],
        rev: Revision,
    ) -> Result<Revision, StoreError> {
        if self.started() {
            self.delivered(rev).await;
            if let Some(created) = self.shared.created_of(rev) {
                return Ok(created);
            }
        }
        let resp = kv
            .get(key.to_vec(), Some(GetOptions::new().with_revision(rev)))
            .await
            .map_err(|e| self.error(e, rev))?;
        Ok(resp
            .kvs()
            .first()
            .map(|kv| kv.create_revision())
            .unwrap_or(rev))
    }

    fn started(&self) -> bool {
        !self.tasks.lock().is_empty()
    }

    /// Reads every live key under `prefix` at `revision` (0 = now), page by page.
    async fn list_all(
        &self,
        client: &Client,
        prefix: &str,
        revision: Revision,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage, StoreError> {
        read_range(
            &self.shared,
            client,
            &self.layout(),
            prefix,
            revision,
            start_after,
            limit,
        )
        .await
    }
}

impl Drop for EtcdBackend {
    fn drop(&mut self) {
        for t in self.tasks.lock().drain(..) {
            t.abort();
        }
    }
}

/// Where the store's keys live in etcd.
#[derive(Clone)]
struct Layout {
    prefix: String,
}

impl Layout {
    fn key(&self, key: &str) -> Vec<u8> {
        format!("{}{key}", self.prefix).into_bytes()
    }

    /// Every key this store owns starts with this.
    fn scope(&self) -> Vec<u8> {
        self.key("/")
    }

    fn compact_key(&self) -> Vec<u8> {
        format!("{}compact_rev_key", self.prefix).into_bytes()
    }

    /// The store key of an etcd key, if it is one of ours.
    fn store_key(&self, key: &[u8]) -> Option<String> {
        let rest = key.strip_prefix(self.prefix.as_bytes())?;
        match std::str::from_utf8(rest) {
            Ok(k) if k.starts_with('/') => Some(k.to_string()),
            _ => {
                tracing::warn!(key = %String::from_utf8_lossy(key), "ignoring a key that is not UTF-8 under the etcd prefix");
                None
            }
        }
    }

    fn kv(&self, kv: etcd_client::KeyValue) -> Option<KeyValue> {
        let (create, modified) = (kv.create_revision(), kv.mod_revision());
        let (key, value) = kv.into_key_value();
        Some(KeyValue {
            key: self.store_key(&key)?,
            value: Bytes::from(value),
            create_revision: create,
            mod_revision: modified,
        })
    }
}

fn map_error(shared: &Shared, e: etcd_client::Error, requested: Revision) -> StoreError {
    if let etcd_client::Error::GRpcStatus(status) = &e {
        let message = status.message();
        if message.contains("required revision has been compacted") {
            // etcd does not say where it compacted: at least past what was asked.
            let oldest = shared
                .compacted
                .fetch_max(requested + 1, Ordering::SeqCst)
                .max(requested + 1);
            return StoreError::Compacted { requested, oldest };
        }
        if message.contains("required revision is a future revision") {
            return StoreError::FutureRevision {
                requested,
                current: shared.delivered.reached(),
            };
        }
        if status.code() != tonic::Code::Unavailable {
            return unavailable(format!("etcd at {}: {message}", shared.endpoints));
        }
    }
    unavailable(format!(
        "cannot connect to etcd at {}: {e}",
        shared.endpoints
    ))
}

async fn read_range(
    shared: &Shared,
    client: &Client,
    layout: &Layout,
    prefix: &str,
    revision: Revision,
    start_after: Option<&str>,
    limit: usize,
) -> Result<ListPage, StoreError> {
    let mut kv = client.kv_client().max_decoding_message_size(MAX_MESSAGE);
    let mut start = match start_after {
        Some(s) if s >= prefix => {
            let mut k = layout.key(s);
            k.push(0);
            k
        }
        _ => layout.key(prefix),
    };
    let end = range_end(&layout.key(prefix));
    let mut at = revision;
    let mut items = Vec::new();
    loop {
        let want = if limit == 0 {
            PAGE
        } else {
            PAGE.min((limit - items.len()) as i64)
        };
        let mut resp = kv
            .get(
                start.clone(),
                Some(
                    GetOptions::new()
                        .with_range(end.clone())
                        .with_limit(want)
                        .with_revision(at),
                ),
            )
            .await
            .map_err(|e| map_error(shared, e, at))?;
        if at == 0 {
            at = resp.header().map(|h| h.revision()).unwrap_or(0);
        }
        let more = resp.more();
        let kvs = resp.take_kvs();
        if let Some(last) = kvs.last() {
            start = last.key().to_vec();
            start.push(0);
        }
        items.extend(kvs.into_iter().filter_map(|kv| layout.kv(kv)));
        let full = limit > 0 && items.len() >= limit;
        if !more || full {
            return Ok(ListPage {
                items,
                revision: at,
                more,
            });
        }
    }
}

#[async_trait]
impl Backend for EtcdBackend {
    async fn start(&self, sink: Arc<dyn EventSink>) -> Result<ListPage, StoreError> {
        let client = self.client().await?;
        let page = self.list_all(&client, "/", 0, None, 0).await?;
        self.shared
            .live_keys
            .store(page.items.len() as u64, Ordering::Relaxed);
        self.shared.live_bytes.store(
            page.items.iter().map(|kv| kv.value.len() as u64).sum(),
            Ordering::Relaxed,
        );
        sink.reset(page.clone());
        self.shared.delivered.advance(page.revision);
        let prev_values = !sink.fills_deleted_values();
        if !prev_values {
            let _ = self.shared.counting_sink.set(sink.clone());
        }
        let feed = Feed {
            prev_values,
            client: client.clone(),
            layout: self.layout(),
            shared: self.shared.clone(),
            sink,
        };
        let mut tasks = self.tasks.lock();
        tasks.push(tokio::spawn(feed.run(page.revision)));
        if !self.options.compaction_interval.is_zero() {
            tasks.push(tokio::spawn(compactor(
                client,
                self.layout(),
                self.shared.clone(),
                self.options.compaction_interval,
            )));
        }
        Ok(page)
    }

    async fn write(&self, op: WriteOp) -> Result<KeyValue, StoreError> {
        let client = self.client().await?;
        let mut kv = client.kv_client();
        let key = self.layout().key(op.key());
        let (guard, action) = match &op {
            WriteOp::Create { value, .. } => (
                Compare::create_revision(key.clone(), CompareOp::Equal, 0),
                TxnOp::put(key.clone(), value.to_vec(), None),
            ),
            WriteOp::Update {
                value, expected, ..
            } => (
                guard(&key, *expected),
                // No previous value asked for: etcd would read the key again inside the
                // transaction only for its create revision, which the watch brings.
                TxnOp::put(key.clone(), value.to_vec(), None),
            ),
            WriteOp::Delete { expected, .. } => (
                guard(&key, *expected),
                TxnOp::delete(
                    key.clone(),
                    Some(etcd_client::DeleteOptions::new().with_prev_key()),
                ),
            ),
        };
        let txn = Txn::new()
            .when([guard])
            .and_then([action])
            .or_else([TxnOp::get(key.clone(), None)]);
        let resp = kv.txn(txn).await.map_err(|e| self.error(e, 0))?;
        let rev = resp.header().map(|h| h.revision()).unwrap_or(0);
        let store_key = op.key().to_string();
        let answer = resp.op_responses().into_iter().next();
        if !resp.succeeded() {
            let current = match answer {
                Some(TxnOpResponse::Get(mut g)) => g
                    .take_kvs()
                    .into_iter()
                    .next()
                    .and_then(|kv| self.layout().kv(kv)),
                _ => None,
            };
            return Err(match (&op, current) {
                (WriteOp::Create { .. }, _) => StoreError::AlreadyExists { key: store_key },
                (_, None) => StoreError::NotFound { key: store_key },
                (WriteOp::Update { expected, .. } | WriteOp::Delete { expected, .. }, Some(c)) => {
                    StoreError::Conflict {
                        key: store_key,
                        expected: *expected,
                        current: Box::new(c),
                    }
                }
            });
        }
        let result = match (op, answer) {
            (WriteOp::Create { value, .. }, _) => KeyValue {
                key: store_key,
                value,
                create_revision: rev,
                mod_revision: rev,
            },
            (WriteOp::Update { value, .. }, Some(TxnOpResponse::Put(_))) => {
                let created = self.created_of(&mut kv, &key, rev).await?;
                return Ok(KeyValue {
                    key: store_key,
                    value,
                    create_revision: created,
                    mod_revision: rev,
                });
            }
            (WriteOp::Delete { value, .. }, Some(TxnOpResponse::Delete(mut d))) => {
                // The deletion event carries the last stored value, as upstream's watch
                // does; `value` stands in only if etcd did not return it.
                match d.take_prev_kvs().into_iter().next() {
                    Some(prev) => {
                        let create = prev.create_revision();
                        let (_, last) = prev.into_key_value();
                        KeyValue {
                            key: store_key,
                            value: Bytes::from(last),
                            create_revision: create,
                            mod_revision: rev,
                        }
                    }
                    None => KeyValue {
                        key: store_key,
                        value,
                        create_revision: 0,
                        mod_revision: rev,
                    },
                }
            }
            (_, other) => {
                return Err(unavailable(format!(
                    "etcd answered a write with an unexpected response: {other:?}"
                )));
            }
        };
        if self.started() {
            self.delivered(rev).await;
        }
        Ok(result)
    }

    async fn list(
        &self,
        prefix: &str,
        revision: Revision,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage, StoreError> {
        let client = self.client().await?;
        self.list_all(&client, prefix, revision, start_after, limit)
            .await
    }

    async fn get(&self, key: &str, revision: Revision) -> Result<Option<KeyValue>, StoreError> {
        let client = self.client().await?;
        let mut kv = client.kv_client().max_decoding_message_size(MAX_MESSAGE);
        let mut resp = kv
            .get(
                self.layout().key(key),
                Some(GetOptions::new().with_revision(revision)),
            )
            .await
            .map_err(|e| self.error(e, revision))?;
        Ok(resp
            .take_kvs()
            .into_iter()
            .next()
            .and_then(|kv| self.layout().kv(kv)))
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        let client = self.client().await?;
        match client.kv_client().compact(revision, None).await {
            Ok(_) => {
                self.shared.compacted.fetch_max(revision, Ordering::SeqCst);
                Ok(())
            }
            Err(e) => match self.error(e, revision) {
                // Compacting again below an earlier point leaves nothing to do.
                StoreError::Compacted { .. } => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn check(&self) -> Result<CheckReport, StoreError> {
        let client = self.client().await?;
        let mut problems = Vec::new();
        let status = client
            .maintenance_client()
            .status()
            .await
            .map_err(|e| self.error(e, 0))?;
        self.shared
            .disk_bytes
            .store(status.db_size().max(0) as u64, Ordering::Relaxed);
        problems.extend(status.errors().iter().map(|e| format!("etcd reports: {e}")));
        if status.leader() == 0 {
            problems.push("etcd has no leader".to_string());
        }
        let alarms = client
            .maintenance_client()
            .alarm(
                etcd_client::AlarmAction::Get,
                etcd_client::AlarmType::None,
                None,
            )
            .await
            .map_err(|e| self.error(e, 0))?;
        for a in alarms.alarms() {
            problems.push(format!(
                "etcd alarm {:?} on member {:x}",
                a.alarm(),
                a.member_id()
            ));
        }
        let scope = self.layout().scope();
        let count = client
            .kv_client()
            .get(
                scope.clone(),
                Some(
                    GetOptions::new()
                        .with_range(range_end(&scope))
                        .with_count_only(),
                ),
            )
            .await
            .map_err(|e| self.error(e, 0))?;
        Ok(CheckReport {
            rows: count.count().max(0) as u64,
            live_keys: count.count().max(0) as u64,
            revision: count.header().map(|h| h.revision()).unwrap_or(0),
            problems,
        })
    }

    fn info(&self) -> BackendInfo {
        let prefix = if self.options.prefix.is_empty() {
            String::new()
        } else {
            format!(" (prefix {})", self.options.prefix)
        };
        BackendInfo {
            name: format!("etcd:{}{prefix}", self.options.endpoints.join(",")),
            revision: self.shared.delivered.reached(),
            compacted: self.shared.compacted.load(Ordering::SeqCst),
            disk_bytes: self.shared.disk_bytes.load(Ordering::Relaxed),
            live_bytes: match self.shared.counting_sink.get() {
                Some(sink) => sink.live_bytes().unwrap_or(0),
                None => self.shared.live_bytes.load(Ordering::Relaxed),
            },
            live_keys: self.shared.live_keys.load(Ordering::Relaxed),
        }
    }

    fn shared(&self) -> bool {
        true
    }

    async fn fresh_revision(&self) -> Result<Revision, StoreError> {
        let client = self.client().await?;
        // A point read is linearizable and carries etcd's current revision; the scope key
        // itself (`<prefix>/`) is never an object.
        let resp = client
            .kv_client()
            .get(
                self.layout().scope(),
                Some(GetOptions::new().with_keys_only()),
            )
            .await
            .map_err(|e| self.error(e, 0))?;
        let rev = resp.header().map(|h| h.revision()).unwrap_or(0);
        if !self.started() || self.shared.delivered.reached() >= rev {
            return Ok(rev);
        }
        let caught_up = tokio::time::timeout(FRESH_TIMEOUT, async {
            loop {
                // Writes outside our keys move etcd's revision without an event: only a
                // progress notification tells the watch it has everything up to `rev`.
                self.shared.want_progress.notify_one();
                let wait = self.shared.delivered.wait_for(rev);
                if tokio::time::timeout(Duration::from_millis(100), wait)
                    .await
                    .is_ok()
                {
                    return;
                }
            }
        })
        .await;
        match caught_up {
            Ok(()) => Ok(rev),
            Err(_) => Err(unavailable(format!(
                "the etcd watch is behind: it has revision {}, etcd has {rev}",
                self.shared.delivered.reached()
            ))),
        }
    }
}

/// The transaction guard of an update or delete: unchanged since `expected`, or merely
/// present when `expected` is 0.
fn guard(key: &[u8], expected: Revision) -> Compare {
    if expected == 0 {
        Compare::create_revision(key.to_vec(), CompareOp::Greater, 0)
    } else {
        Compare::mod_revision(key.to_vec(), CompareOp::Equal, expected)
    }
}

/// How a watch session ended.
enum WatchEnd {
    /// etcd compacted past the revision the watch had to resume from.
    Compacted(Revision),
    /// The stream broke; resume from the last delivered revision.
    Broken(String),
}

/// The task that feeds the sink from one etcd watch over the store's keys.
struct Feed {
    /// Whether the watch asks for previous values: the sink needs them for deletions'
    /// last values (and this feed for the live bytes) unless it holds every value itself.
    prev_values: bool,
    client: Client,
    layout: Layout,
    shared: Arc<Shared>,
    sink: Arc<dyn EventSink>,
}

impl Feed {
    async fn run(self, mut delivered: Revision) {
        loop {
            match self.session(&mut delivered).await {
                WatchEnd::Compacted(at) => {
                    tracing::warn!(
                        from = delivered + 1,
                        compacted = at,
                        "the etcd watch fell behind compaction; reloading every key"
                    );
                    self.shared.compacted.fetch_max(at, Ordering::SeqCst);
                    match read_range(&self.shared, &self.client, &self.layout, "/", 0, None, 0)
                        .await
                    {
                        Ok(page) => {
                            delivered = page.revision;
                            self.shared
                                .live_keys
                                .store(page.items.len() as u64, Ordering::Relaxed);
                            self.shared.live_bytes.store(
                                page.items.iter().map(|kv| kv.value.len() as u64).sum(),
                                Ordering::Relaxed,
                            );
                            self.sink.reset(page);
                            self.shared.delivered.advance(delivered);
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot reload keys from etcd");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                }
                WatchEnd::Broken(why) => {
                    tracing::warn!(error = %why, resume = delivered + 1, "etcd watch ended; resuming");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }

    /// One watch stream from `delivered + 1`, until it ends.
    async fn session(&self, delivered: &mut Revision) -> WatchEnd {
        let scope = self.layout.scope();
        let mut options = WatchOptions::new()
            .with_range(range_end(&scope))
            .with_start_revision(*delivered + 1)
            .with_progress_notify();
        if self.prev_values {
            options = options.with_prev_key();
        }
        let stream = self
            .client
            .watch_client()
            .max_decoding_message_size(MAX_MESSAGE)
            .watch(scope, Some(options))
            .await;
        let (mut requests, mut responses) = match stream {
            Ok(s) => s.split(),
            Err(e) => return WatchEnd::Broken(e.to_string()),
        };
        loop {
            let message = tokio::select! {
                m = responses.message() => m,
                () = self.shared.want_progress.notified() => {
                    if let Err(e) = requests.request_progress().await {
                        return WatchEnd::Broken(e.to_string());
                    }
                    continue;
                }
            };
            let resp = match message {
                Ok(Some(r)) => r,
                Ok(None) => return WatchEnd::Broken("stream closed".into()),
                Err(e) => return WatchEnd::Broken(e.to_string()),
            };
            if resp.canceled() {
                if resp.compact_revision() > 0 {
                    return WatchEnd::Compacted(resp.compact_revision());
                }
                return WatchEnd::Broken(format!("canceled: {}", resp.cancel_reason()));
            }
            if resp.created() {
                continue;
            }
            if resp.events().is_empty() {
                // A progress notification: every write up to this revision was sent.
                let rev = resp.header().map(|h| h.revision()).unwrap_or(0);
                if rev > *delivered {
                    *delivered = rev;
                    self.sink.progress(rev);
                    self.shared.delivered.advance(rev);
                }
                continue;
            }
            let events = self.events(&resp);
            if let Some(last) = events.last() {
                let rev = last.revision();
                self.sink.apply(events);
                if rev > *delivered {
                    *delivered = rev;
                    self.shared.delivered.advance(rev);
                }
            }
        }
    }

    /// The store's events of one watch response, with the size accounting updated.
    fn events(&self, resp: &etcd_client::WatchResponse) -> Vec<Event> {
        let mut out = Vec::with_capacity(resp.events().len());
        for e in resp.events() {
            let Some(kv) = e.kv() else { continue };
            let Some(key) = self.layout.store_key(kv.key()) else {
                continue;
            };
            let prev = e.prev_kv();
            let prev_len = prev.map(|p| p.value().len() as u64);
            let event = match e.event_type() {
                EventType::Put => {
                    let created = kv.create_revision() == kv.mod_revision();
                    if created {
                        self.shared.live_keys.fetch_add(1, Ordering::Relaxed);
                    } else {
                        self.shared
                            .remember_update(kv.mod_revision(), kv.create_revision());
                    }
                    if self.prev_values {
                        self.shared
                            .live_bytes
                            .fetch_add(kv.value().len() as u64, Ordering::Relaxed);
                    }
                    Event {
                        kind: if created {
                            EventKind::Created
                        } else {
                            EventKind::Updated
                        },
                        kv: Arc::new(KeyValue {
                            key,
                            value: Bytes::copy_from_slice(kv.value()),
                            create_revision: kv.create_revision(),
                            mod_revision: kv.mod_revision(),
                        }),
                        prev: None,
                    }
                }
                EventType::Delete => {
                    let _ = self.shared.live_keys.fetch_update(
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                        |n| Some(n.saturating_sub(1)),
                    );
                    // Without previous values (create revision 0) the sink fills in the
                    // last value from its own state.
                    Event {
                        kind: EventKind::Deleted,
                        kv: Arc::new(KeyValue {
                            key,
                            value: prev
                                .map(|p| Bytes::copy_from_slice(p.value()))
                                .unwrap_or_default(),
                            create_revision: prev.map(|p| p.create_revision()).unwrap_or(0),
                            mod_revision: kv.mod_revision(),
                        }),
                        prev: None,
                    }
                }
            };
            if let Some(len) = prev_len {
                let _ = self.shared.live_bytes.fetch_update(
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                    |n| Some(n.saturating_sub(len)),
                );
            }
            out.push(event);
        }
        out
    }
}

/// kube-apiserver's compactor: every `interval`, compact to the revision seen one interval
/// earlier. The version of `compact_rev_key` says which interval it is; only the server
/// whose transaction bumps it compacts, so several servers compact once per interval.
async fn compactor(client: Client, layout: Layout, shared: Arc<Shared>, interval: Duration) {
    let key = layout.compact_key();
    let mut seen_version = 0;
    let mut last_rev = 0;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let mut kv = client.kv_client();
        let txn = Txn::new()
            .when([Compare::version(
                key.clone(),
                CompareOp::Equal,
                seen_version,
            )])
            .and_then([TxnOp::put(key.clone(), Vec::new(), None)])
            .or_else([TxnOp::get(key.clone(), None)]);
        let resp = match kv.txn(txn).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "etcd compaction: cannot read {}", String::from_utf8_lossy(&key));
                continue;
            }
        };
        let current = resp.header().map(|h| h.revision()).unwrap_or(0);
        if !resp.succeeded() {
            // Another server compacts this interval; follow its count.
            seen_version = match resp.op_responses().into_iter().next() {
                Some(TxnOpResponse::Get(g)) => g.kvs().first().map(|kv| kv.version()).unwrap_or(0),
                _ => 0,
            };
            last_rev = current;
            continue;
        }
        seen_version += 1;
        if last_rev > 0 {
            match kv.compact(last_rev, None).await {
                Ok(_) => {
                    shared.compacted.fetch_max(last_rev, Ordering::SeqCst);
                    tracing::debug!(revision = last_rev, "etcd compacted");
                }
                Err(e) => match map_error(&shared, e, last_rev) {
                    StoreError::Compacted { .. } => {}
                    other => tracing::warn!(error = %other, "etcd compaction failed"),
                },
            }
        }
        last_rev = current;
        if let Ok(m) = client.maintenance_client().status().await {
            shared
                .disk_bytes
                .store(m.db_size().max(0) as u64, Ordering::Relaxed);
        }
    }
}
