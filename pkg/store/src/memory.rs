//! In-memory backend: the same contract as SQLite without a disk, for tests and for
//! `--datastore-endpoint memory://`.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::backend::{Backend, BackendInfo, CheckReport, EventSink, ListPage};
use crate::{Event, EventKind, KeyValue, Revision, StoreError, WriteOp, prefix_end};

/// One stored version of a key.
#[derive(Debug, Clone)]
struct Version {
    revision: Revision,
    create_revision: Revision,
    deleted: bool,
    value: bytes::Bytes,
}

#[derive(Default)]
struct State {
    revision: Revision,
    compacted: Revision,
    /// Every version of every key, oldest first.
    history: BTreeMap<String, Vec<Version>>,
    sink: Option<Arc<dyn EventSink>>,
}

/// A [`Backend`] that keeps everything in memory.
#[derive(Default)]
pub struct MemoryBackend {
    state: Mutex<State>,
}

impl MemoryBackend {
    /// An empty store at revision 0.
    pub fn new() -> Self {
        Self::default()
    }
}

fn latest_at(versions: &[Version], revision: Revision) -> Option<&Version> {
    versions.iter().rev().find(|v| v.revision <= revision)
}

fn to_kv(key: &str, v: &Version) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: v.value.clone(),
        create_revision: v.create_revision,
        mod_revision: v.revision,
    }
}

impl State {
    fn check_revision(&self, revision: Revision) -> Result<Revision, StoreError> {
        if revision == 0 {
            return Ok(self.revision);
        }
        if revision > self.revision {
            return Err(StoreError::FutureRevision {
                requested: revision,
                current: self.revision,
            });
        }
        if revision < self.compacted {
            return Err(StoreError::Compacted {
                requested: revision,
                oldest: self.compacted,
            });
        }
        Ok(revision)
    }

    fn current(&self, key: &str) -> Option<&Version> {
        self.history
            .get(key)
            .and_then(|v| v.last())
            .filter(|v| !v.deleted)
    }
}

#[async_trait]
impl Backend for MemoryBackend {
    async fn start(&self, sink: Arc<dyn EventSink>) -> Result<ListPage, StoreError> {
        let mut state = self.state.lock();
        let revision = state.revision;
        let items = state
            .history
            .iter()
            .filter_map(|(k, vs)| vs.last().filter(|v| !v.deleted).map(|v| to_kv(k, v)))
            .collect();
        let page = ListPage {
            items,
            revision,
            more: false,
        };
        sink.reset(page.clone());
        state.sink = Some(sink);
        Ok(page)
    }

    async fn write(&self, op: WriteOp) -> Result<KeyValue, StoreError> {
        let mut state = self.state.lock();
        let revision = state.revision + 1;
        let (kind, version) = match &op {
            WriteOp::Create { key, value } => {
                if state.current(key).is_some() {
                    return Err(StoreError::AlreadyExists { key: key.clone() });
                }
                let v = Version {
                    revision,
                    create_revision: revision,
                    deleted: false,
                    value: value.clone(),
                };
                (EventKind::Created, v)
            }
            WriteOp::Update {
                key,
                value,
                expected,
            }
            | WriteOp::Delete {
                key,
                value,
                expected,
            } => {
                let Some(cur) = state.current(key) else {
                    return Err(StoreError::NotFound { key: key.clone() });
                };
                if *expected != 0 && cur.revision != *expected {
                    return Err(StoreError::Conflict {
                        key: key.clone(),
                        expected: *expected,
                        current: Box::new(to_kv(key, cur)),
                    });
                }
                let deleted = matches!(op, WriteOp::Delete { .. });
                let v = Version {
                    revision,
                    create_revision: cur.create_revision,
                    deleted,
                    value: value.clone(),
                };
                (
                    if deleted {
                        EventKind::Deleted
                    } else {
                        EventKind::Updated
                    },
                    v,
                )
            }
        };
        let key = op.key().to_string();
        let kv = to_kv(&key, &version);
        state.history.entry(key).or_default().push(version);
        state.revision = revision;
        if let Some(sink) = state.sink.clone() {
            sink.apply(vec![Event {
                kind,
                kv: Arc::new(kv.clone()),
                prev: None,
            }]);
        }
        Ok(kv)
    }

    async fn list(
        &self,
        prefix: &str,
        revision: Revision,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage, StoreError> {
        let state = self.state.lock();
        let revision = state.check_revision(revision)?;
        let end = prefix_end(prefix);
        let mut items = Vec::new();
        let mut more = false;
        for (key, versions) in state.history.range(prefix.to_string()..) {
            if end.as_deref().is_some_and(|e| key.as_str() >= e) {
                break;
            }
            if start_after.is_some_and(|s| key.as_str() <= s) {
                continue;
            }
            let Some(v) = latest_at(versions, revision).filter(|v| !v.deleted) else {
                continue;
            };
            if limit > 0 && items.len() == limit {
                more = true;
                break;
            }
            items.push(to_kv(key, v));
        }
        Ok(ListPage {
            items,
            revision,
            more,
        })
    }

    async fn get(&self, key: &str, revision: Revision) -> Result<Option<KeyValue>, StoreError> {
        let state = self.state.lock();
        let revision = state.check_revision(revision)?;
        Ok(state
            .history
            .get(key)
            .and_then(|vs| latest_at(vs, revision))
            .filter(|v| !v.deleted)
            .map(|v| to_kv(key, v)))
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        let mut state = self.state.lock();
        if revision <= state.compacted {
            return Ok(());
        }
        let revision = revision.min(state.revision);
        state.compacted = revision;
        state.history.retain(|_, versions| {
            // Keep the newest version at or below the compaction point (it is still the
            // value as of every later revision) and everything above it.
            let keep_from = versions
                .iter()
                .rposition(|v| v.revision <= revision)
                .unwrap_or(0);
            versions.drain(..keep_from);
            !(versions.len() == 1 && versions[0].deleted && versions[0].revision <= revision)
        });
        Ok(())
    }

    async fn check(&self) -> Result<CheckReport, StoreError> {
        let state = self.state.lock();
        let mut report = CheckReport {
            revision: state.revision,
            ..CheckReport::default()
        };
        for (key, versions) in &state.history {
            report.rows += versions.len() as u64;
            if versions.last().is_some_and(|v| !v.deleted) {
                report.live_keys += 1;
            }
            if versions.windows(2).any(|w| w[0].revision >= w[1].revision) {
                report
                    .problems
                    .push(format!("{key}: revisions out of order"));
            }
            if versions.iter().any(|v| v.revision > state.revision) {
                report
                    .problems
                    .push(format!("{key}: revision beyond current"));
            }
        }
        Ok(report)
    }

    fn info(&self) -> BackendInfo {
        let state = self.state.lock();
        let (live_keys, live_bytes) = state
            .history
            .values()
            .filter_map(|vs| vs.last().filter(|v| !v.deleted))
            .fold((0u64, 0u64), |(n, b), v| (n + 1, b + v.value.len() as u64));
        BackendInfo {
            name: "memory".into(),
            revision: state.revision,
            compacted: state.compacted,
            disk_bytes: 0,
            live_bytes,
            live_keys,
        }
    }
}
